/*
 * The stack object: configuration, the entry points that the engine
 * drives (input, timers), counters and names.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "ust_impl.h"

#define UST_DROP_NAME(name, str) [UST_DROP_##name] = str,
static const char *const drop_names[UST_DROP_MAX] = {[UST_DROP_NONE] = "none",
						     UST_DROP_REASONS(UST_DROP_NAME)};
#undef UST_DROP_NAME

const char *
ust_drop_name(enum ust_drop reason)
{
	if ((unsigned)reason >= UST_DROP_MAX)
		return "unknown";
	return drop_names[reason];
}

const char *
ust_close_reason_name(enum ust_close_reason reason)
{
	switch (reason) {
	case UST_CLOSE_NORMAL:
		return "normal";
	case UST_CLOSE_RESET:
		return "reset";
	case UST_CLOSE_TIMEOUT:
		return "timeout";
	case UST_CLOSE_REFUSED:
		return "refused";
	case UST_CLOSE_UNREACHABLE:
		return "unreachable";
	case UST_CLOSE_ABORTED:
		return "aborted";
	}
	return "unknown";
}

const char *
ust_tcp_state_name(enum ust_tcp_state state)
{
	static const char *const names[] = {
		[UST_TCP_CLOSED] = "CLOSED",         [UST_TCP_SYN_SENT] = "SYN_SENT",
		[UST_TCP_SYN_RCVD] = "SYN_RCVD",     [UST_TCP_ESTABLISHED] = "ESTABLISHED",
		[UST_TCP_FIN_WAIT_1] = "FIN_WAIT_1", [UST_TCP_FIN_WAIT_2] = "FIN_WAIT_2",
		[UST_TCP_CLOSING] = "CLOSING",       [UST_TCP_TIME_WAIT] = "TIME_WAIT",
		[UST_TCP_CLOSE_WAIT] = "CLOSE_WAIT", [UST_TCP_LAST_ACK] = "LAST_ACK",
	};

	if ((unsigned)state >= sizeof(names) / sizeof(names[0]))
		return "UNKNOWN";
	return names[state];
}

void
ust_config_defaults(struct ust_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->prefix_len = 24;
	cfg->mtu = 1500;
	cfg->max_conns = 4096;
	cfg->syn_backlog = 256;
	cfg->time_wait_max = 4096;
	cfg->sndbuf = 64 * 1024;
	cfg->rcvbuf = 64 * 1024;
	cfg->syn_cookies = true;
	cfg->window_scaling = true;
	cfg->timestamps = true;
	cfg->port_min = 32768;
	cfg->port_max = 60999;
	cfg->arp_entries = 64;
	cfg->arp_ttl_us = 300 * 1000000ULL;
	cfg->arp_retry_us = 1000000;
	cfg->arp_retries = 3;
	cfg->rto_initial_us = 1000000;
	cfg->rto_min_us = 200000;
	cfg->rto_max_us = 60 * 1000000ULL;
	cfg->delack_us = 40000;
	cfg->time_wait_us = 60 * 1000000ULL;
	cfg->fin_wait2_us = 60 * 1000000ULL;
	cfg->syn_retries = 5;
	cfg->data_retries = 12;
}

static bool
config_valid(const struct ust_config *c)
{
	if (c->ipv4 == 0 || c->prefix_len < 1 || c->prefix_len > 32)
		return false;
	if (c->mtu < 576 || c->mtu > 9000)
		return false;
	if (c->max_conns == 0 || c->max_conns > (1u << 24) || c->syn_backlog == 0)
		return false;
	if (c->time_wait_max == 0 || c->time_wait_max > (1u << 24))
		return false;
	if (c->sndbuf < 1024 || c->sndbuf > (16u << 20))
		return false;
	if (c->rcvbuf < 1024 || c->rcvbuf > (16u << 20))
		return false;
	if (c->port_min == 0 || c->port_min > c->port_max)
		return false;
	if (c->arp_entries == 0 || c->arp_entries > 65536 || c->arp_retry_us == 0)
		return false;
	if (c->rto_min_us == 0 || c->rto_min_us > c->rto_max_us || c->rto_initial_us == 0)
		return false;
	return c->delack_us > 0 && c->time_wait_us > 0 && c->fin_wait2_us > 0;
}

/* The smallest shift that fits the receive buffer in 16 bits (max 14). */
static uint8_t
wscale_for(uint32_t rcvbuf)
{
	uint8_t shift = 0;

	while (shift < 14 && (rcvbuf >> shift) > 65535)
		shift++;
	return shift;
}

int
ust_stack_create(const struct ust_config *cfg, const struct ust_ops *ops, struct ust_stack **out)
{
	struct ust_stack *s;

	if (!config_valid(cfg) || !ops->tx)
		return -EINVAL;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;

	s->cfg = *cfg;
	s->ops = *ops;
	s->netmask = cfg->prefix_len == 32 ? 0xffffffff : ~(0xffffffffu >> cfg->prefix_len);
	s->frame_max = (size_t)cfg->mtu + ETH_HLEN;
	s->our_wscale = cfg->window_scaling ? wscale_for(cfg->rcvbuf) : 0;
	s->next_port = cfg->port_min;
	s->txbuf = calloc(1, s->frame_max);

	if (!s->txbuf || arp_create(s) != 0 || conn_tables_create(s) != 0 || tw_create(s) != 0) {
		ust_stack_destroy(s);
		return -ENOMEM;
	}

	ust_announce(s);
	*out = s;
	return 0;
}

void
ust_stack_destroy(struct ust_stack *s)
{
	if (!s)
		return;

	conn_tables_destroy(s);
	tw_destroy(s);
	arp_destroy(s);
	free(s->txbuf);
	free(s);
}

void
stack_enter(struct ust_stack *s)
{
	s->depth++;
}

/* Free the connections that finished, once no caller can still hold one. */
void
stack_leave(struct ust_stack *s)
{
	if (--s->depth == 0)
		conn_reap_all(s);
}

void
stack_drop(struct ust_stack *s, enum ust_drop reason)
{
	s->ctr.drops[reason]++;
}

uint64_t
stack_hash(const struct ust_stack *s, const void *data, size_t len)
{
	return siphash24(s->cfg.secret, data, len);
}

static void
advance_clock(struct ust_stack *s, uint64_t now_us)
{
	/* A clock that steps back would fire nothing and stall the timers. */
	if (now_us > s->now)
		s->now = now_us;
}

void
ust_input(struct ust_stack *s, const void *frame, size_t len, unsigned rx_flags, uint64_t now_us)
{
	stack_enter(s);
	advance_clock(s, now_us);
	s->ctr.rx_frames++;
	s->ctr.rx_bytes += len;
	eth_input(s, frame, len, rx_flags);
	stack_leave(s);
}

void
ust_timers(struct ust_stack *s, uint64_t now_us)
{
	stack_enter(s);
	advance_clock(s, now_us);
	arp_timers(s);
	tw_timers(s);
	tcp_timers(s);
	stack_leave(s);
}

uint64_t
ust_next_timer(const struct ust_stack *s)
{
	uint64_t next = arp_next_timer(s);

	next = min_u64(next, tcp_next_timer(s));
	if (s->tw_count)
		next = min_u64(next, s->tw[s->tw_head].expires);
	return next;
}

const struct ust_counters *
ust_counters(const struct ust_stack *s)
{
	return &s->ctr;
}

void
ust_counters_add(struct ust_counters *dst, const struct ust_counters *src)
{
	/* Every field is a uint64_t, so the struct is an array of them. */
	uint64_t d[sizeof(*dst) / sizeof(uint64_t)];
	uint64_t a[sizeof(*src) / sizeof(uint64_t)];

	_Static_assert(sizeof(struct ust_counters) % sizeof(uint64_t) == 0,
		       "ust_counters must hold only uint64_t");
	memcpy(d, dst, sizeof(d));
	memcpy(a, src, sizeof(a));
	for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++)
		d[i] += a[i];
	memcpy(dst, d, sizeof(d));
}

#define COUNTER(field)                                       \
	{                                                    \
#field, offsetof(struct ust_counters, field) \
	}

static const struct {
	const char *name;
	size_t offset;
} counter_fields[] = {
	COUNTER(rx_frames),
	COUNTER(rx_bytes),
	COUNTER(tx_frames),
	COUNTER(tx_bytes),
	COUNTER(arp_requests_tx),
	COUNTER(arp_replies_tx),
	COUNTER(arp_announce_tx),
	COUNTER(arp_requests_rx),
	COUNTER(arp_replies_rx),
	COUNTER(arp_resolved),
	COUNTER(arp_expired),
	COUNTER(icmp_echo_replies),
	COUNTER(tcp_active_opens),
	COUNTER(tcp_passive_opens),
	COUNTER(tcp_established),
	COUNTER(tcp_conns),
	COUNTER(tcp_resets_rx),
	COUNTER(tcp_resets_tx),
	COUNTER(tcp_timeouts),
	COUNTER(tcp_retransmits),
	COUNTER(tcp_rto),
	COUNTER(tcp_fast_retransmits),
	COUNTER(tcp_dupacks_rx),
	COUNTER(tcp_recoveries),
	COUNTER(tcp_zero_window_probes),
	COUNTER(tcp_delayed_acks),
	COUNTER(tcp_challenge_acks),
	COUNTER(tcp_syn_cookies_tx),
	COUNTER(tcp_syn_cookies_ok),
	COUNTER(tcp_time_wait),
	COUNTER(tcp_time_wait_evicted),
	COUNTER(tcp_time_wait_recycled),
};

#undef COUNTER

void
ust_counters_foreach(const struct ust_counters *c,
		     void (*fn)(void *arg, const char *name, uint64_t value), void *arg)
{
	const char *base = (const char *)c;
	char name[64];

	for (size_t i = 0; i < sizeof(counter_fields) / sizeof(counter_fields[0]); i++) {
		uint64_t v;

		memcpy(&v, base + counter_fields[i].offset, sizeof(v));
		fn(arg, counter_fields[i].name, v);
	}

	for (int r = UST_DROP_NONE + 1; r < UST_DROP_MAX; r++) {
		snprintf(name, sizeof(name), "drop_%s", drop_names[r]);
		fn(arg, name, c->drops[r]);
	}
}
