/*
 * Ethernet and ARP (RFC 826). The cache maps next-hop addresses to MACs:
 *
 *	(free) --output to an unknown hop--> UNRESOLVED: request sent,
 *	          one frame held, a new request every arp_retry_us
 *	UNRESOLVED --reply or request from it--> RESOLVED: held frame sent
 *	UNRESOLVED --arp_retries requests unanswered--> (free): frame dropped,
 *	          connections still opening to that hop fail unreachable
 *	RESOLVED --used near its expiry--> request sent, entry still used
 *	RESOLVED --arp_ttl_us without news--> (free)
 *
 * Only the last frame for an unresolved hop is held: TCP retransmits what
 * the cache could not keep, so a deeper queue would only add memory.
 */
#include <errno.h>
#include <stdlib.h>

#include "ust_impl.h"

#define ARP_LEN     28
#define ARP_REQUEST 1
#define ARP_REPLY   2
#define ETH_MIN     60 /* without the FCS */

static const uint8_t broadcast_mac[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

int
arp_create(struct ust_stack *s)
{
	uint32_t n = s->cfg.arp_entries;

	s->arp = calloc(n, sizeof(*s->arp));
	if (!s->arp)
		return -ENOMEM;

	for (uint32_t i = 0; i < n; i++) {
		s->arp[i].hold = malloc(s->frame_max);
		if (!s->arp[i].hold)
			return -ENOMEM;
	}
	return 0;
}

void
arp_destroy(struct ust_stack *s)
{
	if (!s->arp)
		return;

	for (uint32_t i = 0; i < s->cfg.arp_entries; i++)
		free(s->arp[i].hold);
	free(s->arp);
	s->arp = NULL;
}

static void
eth_tx(struct ust_stack *s, const uint8_t *frame, size_t len, unsigned tx_flags)
{
	if (s->ops.tx(s->ops.arg, frame, len, tx_flags) != 0) {
		stack_drop(s, UST_DROP_TX_FAILED);
		return;
	}

	s->ctr.tx_frames++;
	s->ctr.tx_bytes += len;
}

static void
arp_send(struct ust_stack *s, uint16_t op, const uint8_t *dst_mac, const uint8_t *tha, uint32_t tpa)
{
	uint8_t f[ETH_MIN] = {0};
	uint8_t *a = f + ETH_HLEN;

	memcpy(f, dst_mac, 6);
	memcpy(f + 6, s->cfg.mac, 6);
	wr16(f + 12, ETH_TYPE_ARP);

	wr16(a, 1);
	wr16(a + 2, ETH_TYPE_IPV4);
	a[4] = 6;
	a[5] = 4;
	wr16(a + 6, op);
	memcpy(a + 8, s->cfg.mac, 6);
	wr32(a + 14, s->cfg.ipv4);
	memcpy(a + 18, tha, 6);
	wr32(a + 24, tpa);

	eth_tx(s, f, sizeof(f), 0);
}

void
ust_announce(struct ust_stack *s)
{
	static const uint8_t zero_mac[6];

	/* A request for our own address: neighbours refresh their caches. */
	arp_send(s, ARP_REQUEST, broadcast_mac, zero_mac, s->cfg.ipv4);
	s->ctr.arp_announce_tx++;
}

static void
arp_request(struct ust_stack *s, struct ust_arp_entry *e)
{
	static const uint8_t zero_mac[6];

	arp_send(s, ARP_REQUEST, broadcast_mac, zero_mac, e->ip);
	s->ctr.arp_requests_tx++;
	e->tries++;
	e->retry_at = s->now + s->cfg.arp_retry_us;
}

static struct ust_arp_entry *
arp_find(struct ust_stack *s, uint32_t ip)
{
	for (uint32_t i = 0; i < s->cfg.arp_entries; i++)
		if (s->arp[i].ip == ip)
			return &s->arp[i];
	return NULL;
}

/* A free entry, or else the one least recently used. */
static struct ust_arp_entry *
arp_alloc(struct ust_stack *s, uint32_t ip)
{
	struct ust_arp_entry *victim = &s->arp[0];

	for (uint32_t i = 0; i < s->cfg.arp_entries; i++) {
		struct ust_arp_entry *e = &s->arp[i];

		if (e->ip == 0) {
			victim = e;
			break;
		}
		if (e->last_used < victim->last_used)
			victim = e;
	}

	if (victim->ip && !victim->resolved && victim->hold_len)
		stack_drop(s, UST_DROP_ARP_UNRESOLVED);
	victim->ip = ip;
	victim->resolved = false;
	victim->tries = 0;
	victim->hold_len = 0;
	victim->last_used = s->now;
	return victim;
}

static void
fill_eth(struct ust_stack *s, uint8_t *frame, const uint8_t *dst_mac)
{
	memcpy(frame, dst_mac, 6);
	memcpy(frame + 6, s->cfg.mac, 6);
	wr16(frame + 12, ETH_TYPE_IPV4);
}

static void
arp_hold(struct ust_stack *s, struct ust_arp_entry *e, size_t len, unsigned tx_flags)
{
	if (e->hold_len)
		stack_drop(s, UST_DROP_ARP_HOLD_REPLACED);
	memcpy(e->hold, s->txbuf, len);
	e->hold_len = (uint32_t)len;
	e->hold_flags = tx_flags;
}

static void
arp_resolved(struct ust_stack *s, struct ust_arp_entry *e, const uint8_t *mac)
{
	if (!e->resolved)
		s->ctr.arp_resolved++;

	memcpy(e->mac, mac, 6);
	e->resolved = true;
	e->expires = s->now + s->cfg.arp_ttl_us;
	e->tries = 0;

	if (e->hold_len) {
		fill_eth(s, e->hold, e->mac);
		eth_tx(s, e->hold, e->hold_len, e->hold_flags);
		e->hold_len = 0;
	}
}

/*
 * An entry in use that is about to expire is asked about again while it
 * still works, so a busy flow never waits on ARP at the expiry.
 */
static void
arp_refresh(struct ust_stack *s, struct ust_arp_entry *e)
{
	uint64_t window = s->cfg.arp_retry_us * (s->cfg.arp_retries + 1);

	if (e->expires > s->now + window || e->retry_at > s->now)
		return;
	arp_request(s, e);
}

bool
arp_route_ok(const struct ust_stack *s, uint32_t dst)
{
	return ((dst ^ s->cfg.ipv4) & s->netmask) == 0 || s->cfg.gateway != 0;
}

static uint32_t
next_hop(const struct ust_stack *s, uint32_t dst)
{
	if (((dst ^ s->cfg.ipv4) & s->netmask) == 0)
		return dst;
	return s->cfg.gateway;
}

void
eth_output_ip(struct ust_stack *s, uint32_t dst, size_t ip_len, unsigned tx_flags)
{
	uint32_t hop = next_hop(s, dst);
	size_t len = ETH_HLEN + ip_len;
	struct ust_arp_entry *e;

	if (hop == 0) {
		stack_drop(s, UST_DROP_NO_ROUTE);
		return;
	}

	e = arp_find(s, hop);
	if (e && e->resolved) {
		e->last_used = s->now;
		fill_eth(s, s->txbuf, e->mac);
		eth_tx(s, s->txbuf, len, tx_flags);
		arp_refresh(s, e);
		return;
	}

	if (!e) {
		e = arp_alloc(s, hop);
		arp_request(s, e);
	}
	arp_hold(s, e, len, tx_flags);
}

static bool
arp_valid(const uint8_t *a)
{
	return rd16(a) == 1 && rd16(a + 2) == ETH_TYPE_IPV4 && a[4] == 6 && a[5] == 4 &&
	       (rd16(a + 6) == ARP_REQUEST || rd16(a + 6) == ARP_REPLY);
}

static void
arp_input(struct ust_stack *s, const uint8_t *a, size_t len)
{
	const uint8_t *sha = a + 8;
	uint32_t spa, tpa;
	struct ust_arp_entry *e;
	uint16_t op;

	/* Ethernet pads ARP to 46 bytes, so only a lower bound holds. */
	if (len < ARP_LEN || !arp_valid(a) || (sha[0] & 1)) {
		stack_drop(s, UST_DROP_ARP_MALFORMED);
		return;
	}

	op = rd16(a + 6);
	spa = rd32(a + 14);
	tpa = rd32(a + 24);
	if (op == ARP_REQUEST)
		s->ctr.arp_requests_rx++;
	else
		s->ctr.arp_replies_rx++;

	/* RFC 826: update what we know of the sender, wherever it spoke. */
	e = spa && spa != s->cfg.ipv4 ? arp_find(s, spa) : NULL;
	if (e)
		arp_resolved(s, e, sha);

	if (tpa != s->cfg.ipv4 || spa == s->cfg.ipv4) {
		if (!e)
			stack_drop(s, UST_DROP_ARP_NOT_US);
		return;
	}

	/* Addressed to us: learn the sender, it is about to talk to us. */
	if (!e && spa && ((spa ^ s->cfg.ipv4) & s->netmask) == 0)
		arp_resolved(s, arp_alloc(s, spa), sha);

	if (op == ARP_REQUEST) {
		arp_send(s, ARP_REPLY, sha, sha, spa);
		s->ctr.arp_replies_tx++;
	}
}

void
eth_input(struct ust_stack *s, const uint8_t *frame, size_t len, unsigned rx_flags)
{
	uint16_t type;

	if (len < ETH_HLEN) {
		stack_drop(s, UST_DROP_ETH_SHORT);
		return;
	}

	if (memcmp(frame, s->cfg.mac, 6) != 0 && memcmp(frame, broadcast_mac, 6) != 0) {
		stack_drop(s, UST_DROP_ETH_DST);
		return;
	}

	type = rd16(frame + 12);
	if (type == ETH_TYPE_IPV4)
		ipv4_input(s, frame + ETH_HLEN, len - ETH_HLEN, rx_flags);
	else if (type == ETH_TYPE_ARP)
		arp_input(s, frame + ETH_HLEN, len - ETH_HLEN);
	else
		stack_drop(s, UST_DROP_ETH_TYPE); /* TODO(#5): 802.1Q VLAN tags */
}

/* Opening connections to a hop that never answered fail now, not later. */
static void
arp_unreachable(struct ust_stack *s, uint32_t hop)
{
	for (struct ust_conn *c = s->all; c; c = c->all_next)
		if (c->state == UST_TCP_SYN_SENT && next_hop(s, c->raddr) == hop) {
			c->err = -EHOSTUNREACH;
			conn_closed(c, UST_CLOSE_UNREACHABLE);
			conn_dispatch(c);
		}
}

static void
arp_entry_timer(struct ust_stack *s, struct ust_arp_entry *e)
{
	uint32_t hop = e->ip;

	if (e->resolved && e->expires <= s->now) {
		e->ip = 0;
		s->ctr.arp_expired++;
		return;
	}

	if (e->resolved || e->retry_at > s->now)
		return;

	if (e->tries < s->cfg.arp_retries) {
		arp_request(s, e);
		return;
	}

	if (e->hold_len)
		stack_drop(s, UST_DROP_ARP_UNRESOLVED);
	e->ip = 0;
	e->hold_len = 0;
	arp_unreachable(s, hop);
}

void
arp_timers(struct ust_stack *s)
{
	for (uint32_t i = 0; i < s->cfg.arp_entries; i++)
		if (s->arp[i].ip)
			arp_entry_timer(s, &s->arp[i]);
}

uint64_t
arp_next_timer(const struct ust_stack *s)
{
	uint64_t next = UINT64_MAX;

	for (uint32_t i = 0; i < s->cfg.arp_entries; i++) {
		const struct ust_arp_entry *e = &s->arp[i];

		if (e->ip)
			next = min_u64(next, e->resolved ? e->expires : e->retry_at);
	}
	return next;
}
