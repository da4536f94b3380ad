/*
 * IPv4 (RFC 791): header checks on the way in, the header on the way out.
 * Fragments are dropped and counted: usher's peers do path MTU discovery
 * and TCP never fragments, so reassembly would be attack surface only.
 */
#include "ust_impl.h"

#define IP_DF        0x4000
#define IP_FRAG_MASK 0x3fff /* MF and the offset */
#define IP_TTL       64

static bool
csum_ok(const uint8_t *ip, size_t hlen, unsigned rx_flags)
{
	if (rx_flags & UST_RX_IPV4_CSUM_BAD)
		return false;
	if (rx_flags & UST_RX_IPV4_CSUM_GOOD)
		return true;
	return ust_csum_fold(ust_csum_add(0, ip, hlen)) == 0;
}

/* Addresses no one may send from: zero, loopback, multicast, broadcast, us. */
static bool
src_ok(const struct ust_stack *s, uint32_t src)
{
	bool on_subnet = ((src ^ s->cfg.ipv4) & s->netmask) == 0;

	if (src == 0 || src == s->cfg.ipv4 || (src >> 24) == 127 || src >= 0xe0000000)
		return false;

	/* The subnet's broadcast address; /31 and /32 have none (RFC 3021). */
	return !on_subnet || s->cfg.prefix_len >= 31 || (src | s->netmask) != 0xffffffff;
}

static enum ust_drop
ipv4_check(struct ust_stack *s, const uint8_t *ip, size_t len, unsigned rx_flags)
{
	size_t hlen, total;

	if (len < IP_HLEN)
		return UST_DROP_IP_SHORT;
	if ((ip[0] >> 4) != 4)
		return UST_DROP_IP_VERSION;

	hlen = (size_t)(ip[0] & 0x0f) * 4;
	if (hlen < IP_HLEN)
		return UST_DROP_IP_HDRLEN;
	if (hlen > len)
		return UST_DROP_IP_SHORT;

	total = rd16(ip + 2);
	if (total < hlen || total > len)
		return UST_DROP_IP_LEN;
	if (!csum_ok(ip, hlen, rx_flags))
		return UST_DROP_IP_CSUM;
	if (rd16(ip + 6) & IP_FRAG_MASK)
		return UST_DROP_IP_FRAG; /* TODO(#5): reassembly, if ever needed */
	if (rd32(ip + 16) != s->cfg.ipv4)
		return UST_DROP_IP_NOT_US;
	if (!src_ok(s, rd32(ip + 12)))
		return UST_DROP_IP_SRC;
	return UST_DROP_NONE;
}

void
ipv4_input(struct ust_stack *s, const uint8_t *ip, size_t len, unsigned rx_flags)
{
	enum ust_drop why = ipv4_check(s, ip, len, rx_flags);
	struct ust_pkt pkt;
	size_t hlen;

	if (why != UST_DROP_NONE) {
		stack_drop(s, why);
		return;
	}

	/* Past the checks the total length is the truth; the rest is padding. */
	hlen = (size_t)(ip[0] & 0x0f) * 4;
	pkt.l3 = ip;
	pkt.l3_len = rd16(ip + 2);
	pkt.l4 = ip + hlen;
	pkt.l4_len = pkt.l3_len - hlen;
	pkt.src = rd32(ip + 12);
	pkt.dst = rd32(ip + 16);
	pkt.rx_flags = rx_flags;

	switch (ip[9]) {
	case IP_PROTO_TCP:
		tcp_input(s, &pkt);
		break;
	case IP_PROTO_ICMP:
		icmp_input(s, &pkt);
		break;
	default:
		stack_drop(s, UST_DROP_IP_PROTO);
	}
}

void
ipv4_output(struct ust_stack *s, uint32_t dst, uint8_t proto, size_t l4_len, unsigned tx_flags)
{
	uint8_t *ip = s->txbuf + ETH_HLEN;
	size_t total = IP_HLEN + l4_len;

	ip[0] = 0x45;
	ip[1] = 0;
	wr16(ip + 2, (uint16_t)total);
	wr16(ip + 4, s->ip_id++);
	wr16(ip + 6, proto == IP_PROTO_TCP ? IP_DF : 0);
	ip[8] = IP_TTL;
	ip[9] = proto;
	wr16(ip + 10, 0);
	wr32(ip + 12, s->cfg.ipv4);
	wr32(ip + 16, dst);

	if (s->cfg.offloads & UST_OFFLOAD_TX_IPV4_CSUM)
		tx_flags |= UST_TX_IPV4_CSUM;
	else
		wr16(ip + 10, ust_csum_fold(ust_csum_add(0, ip, IP_HLEN)));

	eth_output_ip(s, dst, total, tx_flags);
}
