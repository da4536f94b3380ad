/*
 * SYN cookies: when a listener's SYN queue is full, the SYN-ACK's ISN
 * carries the connection instead of memory, and the handshake's final ACK
 * brings it back. Layout of the 32-bit cookie:
 *
 *	 31     27 26                       3 2   0
 *	+---------+--------------------------+-----+
 *	|  time   |  keyed hash (24 bits)    | mss |
 *	+---------+--------------------------+-----+
 *
 * time counts 64-second periods (mod 32), so a cookie is good for one to
 * two periods; the hash covers both addresses, both ports, the peer's ISN
 * and the period; mss indexes the table below. When the peer does
 * timestamps, our first TSval also carries its window scale in its low
 * five bits (a flag and four bits of shift), so scaling survives too.
 */
#include "ust_impl.h"

#define COOKIE_PERIOD_US (64 * 1000000ULL)
#define TS_WS_FLAG       0x10
#define TS_WS_MASK       0x0f
#define TS_LOW_BITS      0x1f

static const uint16_t cookie_mss[8] = {536, 1024, 1220, 1300, 1360, 1400, 1440, 1460};

static uint32_t
cookie_hash(struct ust_stack *s, const struct ust_seg *seg, uint32_t peer_isn, uint32_t period)
{
	uint8_t key[21];

	key[0] = 'c';
	wr32(key + 1, seg->src);
	wr32(key + 5, s->cfg.ipv4);
	wr16(key + 9, seg->sport);
	wr16(key + 11, seg->dport);
	wr32(key + 13, peer_isn);
	wr32(key + 17, period);
	return (uint32_t)stack_hash(s, key, sizeof(key)) & 0xffffff;
}

static uint32_t
mss_index(uint16_t peer_mss)
{
	uint32_t i = 0;

	while (i + 1 < 8 && cookie_mss[i + 1] <= peer_mss)
		i++;
	return i;
}

uint32_t
cookie_make(struct ust_stack *s, const struct ust_seg *seg, uint16_t *mss_out)
{
	uint32_t period = (uint32_t)(s->now / COOKIE_PERIOD_US);
	uint32_t idx = mss_index(seg->opts.mss_ok ? seg->opts.mss : 536);

	*mss_out = cookie_mss[idx];
	return (period & 0x1f) << 27 | cookie_hash(s, seg, seg->seq, period) << 3 | idx;
}

/* seg is the ACK completing a handshake we never stored. */
bool
cookie_check(struct ust_stack *s, const struct ust_seg *seg, uint16_t *mss_out)
{
	uint32_t cookie = seg->ack - 1;
	uint32_t now = (uint32_t)(s->now / COOKIE_PERIOD_US);
	uint32_t age = (now - (cookie >> 27)) & 0x1f;

	if (age > 1)
		return false;
	if (cookie_hash(s, seg, seg->seq - 1, now - age) != ((cookie >> 3) & 0xffffff))
		return false;

	*mss_out = cookie_mss[cookie & 7];
	return true;
}

uint32_t
cookie_tsval(struct ust_stack *s, const struct ust_seg *syn)
{
	uint32_t bits = 0;

	if (syn->opts.ws_ok && s->cfg.window_scaling)
		bits = TS_WS_FLAG | (syn->opts.ws > 14 ? 14 : syn->opts.ws);
	return (tcp_now_ts(s) & ~(uint32_t)TS_LOW_BITS) | bits;
}

void
cookie_options(uint32_t tsecr, bool *ws_ok, uint8_t *ws)
{
	*ws_ok = (tsecr & TS_WS_FLAG) != 0;
	*ws = (uint8_t)(tsecr & TS_WS_MASK);
}
