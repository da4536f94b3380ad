/*
 * conn_internal: what tls.c and conn.c share inside proxy/conn.
 */
#ifndef USHER_CONN_INTERNAL_H
#define USHER_CONN_INTERNAL_H

#include <openssl/ssl.h>

#include "conn.h"
#include "tkc.h"

/*
 * The tkc pick_server hook: the ticket about to be written needs a server
 * and none is chosen yet (TLS 1.3 writes tickets at the end of the
 * handshake, before ush_conn sees it complete). Picks with the balancer
 * of the connection that owns ssl and records the choice in it.
 */
void ush_conn_pick_for_ticket(SSL *ssl, struct tkc_conn *t, void *arg);

#endif
