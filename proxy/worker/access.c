/*
 * What is written when a connection ends: its access log line, and an
 * event line when the way it ended is something an operator should see.
 */
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "log.h"
#include "worker.h"

static const char *
session_sni(SSL *ssl)
{
	return ssl != NULL ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : NULL;
}

/*
 * Levels follow blame. A client that sends garbage or gives up is the
 * peer's doing: info, rate-limited. No usable upstream is an outage the
 * operator must see: warn, rate-limited. Our own failures: error.
 */
static void
log_close_event(struct ush_worker *w, const struct ush_conn *c)
{
	const char *listener = c->env->listener->name;
	char addr[USH_ADDR_STRLEN], reason[256] = "";

	ush_addr_str((const struct sockaddr *)&c->client_addr, addr, sizeof(addr));
	if (c->tls_error != 0)
		ERR_error_string_n(c->tls_error, reason, sizeof(reason));

	switch (c->reason) {
	case USH_CLOSE_HANDSHAKE_FAILED:
		ush_log_limited(&w->peer_log_limit, USH_LOG_INFO,
				"client %s on '%s': TLS handshake failed (%s)", addr, listener,
				reason[0] ? reason : "unexpected data");
		break;
	case USH_CLOSE_HANDSHAKE_TIMEOUT:
		ush_log_limited(&w->peer_log_limit, USH_LOG_INFO,
				"client %s on '%s': no TLS handshake within the timeout", addr,
				listener);
		break;
	case USH_CLOSE_NO_SERVER:
	case USH_CLOSE_UPSTREAM_FAILED:
		ush_log_limited(&w->upstream_log_limit, USH_LOG_WARN,
				"client %s on '%s': no server of pool '%s' could be reached", addr,
				listener, c->env->listener->pool_name);
		break;
	case USH_CLOSE_INTERNAL:
		ush_log_limited(&w->upstream_log_limit, USH_LOG_ERROR,
				"client %s on '%s': closed on an internal failure (%s)", addr,
				listener, reason[0] ? reason : "out of memory");
		break;
	default:
		break;
	}
}

void
ush_worker_log_close(struct ush_worker *w, const struct ush_conn *c, uint64_t now_ms)
{
	struct ush_access_record rec = {0};
	SSL *ssl = c->ssl;

	if (c->env == NULL)
		return;

	log_close_event(w, c);

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
