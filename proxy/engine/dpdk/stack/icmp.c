/*
 * ICMP (RFC 792): echo replies. Everything else is counted and dropped.
 */
#include "ust_impl.h"

#define ICMP_ECHO_REPLY   0
#define ICMP_ECHO_REQUEST 8
#define ICMP_HLEN         8

void
icmp_input(struct ust_stack *s, const struct ust_pkt *pkt)
{
	uint8_t *reply = s->txbuf + ETH_HLEN + IP_HLEN;

	if (pkt->l4_len < ICMP_HLEN) {
		stack_drop(s, UST_DROP_ICMP_SHORT);
		return;
	}
	if (ust_csum_fold(ust_csum_add(0, pkt->l4, pkt->l4_len)) != 0) {
		stack_drop(s, UST_DROP_ICMP_CSUM);
		return;
	}

	/* TODO(#5): fragmentation-needed for path MTU, unreachables to TCP. */
	if (pkt->l4[0] != ICMP_ECHO_REQUEST || pkt->l4[1] != 0) {
		stack_drop(s, UST_DROP_ICMP_TYPE);
		return;
	}

	/* A request that came in with IP options may not fit our MTU bare. */
	if (pkt->l4_len > (size_t)s->cfg.mtu - IP_HLEN) {
		stack_drop(s, UST_DROP_ICMP_TOO_BIG);
		return;
	}

	/* Same identifier, sequence and data; only the type changes. */
	memcpy(reply, pkt->l4, pkt->l4_len);
	reply[0] = ICMP_ECHO_REPLY;
	wr16(reply + 2, 0);
	wr16(reply + 2, ust_csum_fold(ust_csum_add(0, reply, pkt->l4_len)));

	s->ctr.icmp_echo_replies++;
	ipv4_output(s, pkt->src, IP_PROTO_ICMP, pkt->l4_len, 0);
}
