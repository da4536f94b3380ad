/*
 * The access log line of a connection, taken from its state at close.
 */
#include <openssl/ssl.h>

#include "log.h"
#include "worker.h"

static const char *
session_sni(SSL *ssl)
{
	return ssl != NULL ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : NULL;
}

void
ush_worker_log_close(struct ush_worker *w, const struct ush_conn *c, uint64_t now_ms)
{
	struct ush_access_record rec = {0};
	SSL *ssl = c->ssl;

	(void)w;
	if (c->env == NULL)
		return;

	rec.client = (const struct sockaddr *)&c->client_addr;
	rec.listener = c->env->listener->name;
	rec.sni = session_sni(ssl);
	if (ssl != NULL) {
		unsigned alpn_len = 0;

		SSL_get0_alpn_selected(ssl, &rec.alpn, &alpn_len);
		rec.alpn_len = alpn_len;
		rec.tls_version = SSL_is_init_finished(ssl) ? SSL_get_version(ssl) : NULL;
		rec.resumed = SSL_session_reused(ssl) == 1;
	}
	rec.ticket = tkc_outcome_name(c->ticket.outcome);
	rec.server = c->server != NULL ? c->server->cfg->name : NULL;
	rec.bytes_in = c->bytes_from_client;
	rec.bytes_out = c->bytes_to_client;
	rec.duration_ms = now_ms - c->accepted_ms;
	rec.reason = ush_close_reason_name(c->reason);
	ush_access_log_write(&rec);
}
