/*
 * The ust stack's cost per packet (issue #5): CPU cycles per ust_input for
 * each kind of frame a DPDK core meets, and per frame produced by ust_send.
 *
 *   stack/rx_ack_pure          ACK-only segment, nothing in flight
 *   stack/rx_ack_new_data      ACK-only segment acknowledging 1448 new bytes
 *   stack/rx_data_in_order     1448-byte segment at rcv_nxt, drained by the
 *                              application through ust_recv in on_readable
 *   stack/rx_data_out_of_order 1448-byte segment one MSS past rcv_nxt (the
 *                              hole is filled, untimed, after each)
 *   stack/rx_syn_listener      SYN to a listener, SYN-ACK out
 *   stack/rx_unknown_conn      ACK to a port nobody listens on, RST out
 *   stack/rx_arp_request       ARP request for our address, reply out
 *   stack/rx_bad_tcp_csum      1448-byte segment with a wrong TCP checksum
 *   stack/rx_bad_ip_csum       the same with a wrong IPv4 header checksum
 *   stack/tx_send_16k          ust_send of 16 KiB: cycles per frame out
 *
 * Cycles are TSC ticks read with rdtsc/rdtscp around the one call measured,
 * less the cost of an empty bracket; the TSC frequency is calibrated once
 * against CLOCK_MONOTONIC (context "tsc_mhz"), which turns cycles into the
 * Time column (manual time) and into Mpps, the packet rate one core would
 * reach spending nothing but this. Crafting frames, acknowledging what the
 * stack sent and running its timers happen between brackets, untimed.
 *
 * No offloads: the stack verifies and computes every checksum in software,
 * as on net_ring and net_memif. Timestamps and window scaling are on, as
 * with a Linux peer. The transmit callback copies each frame, which is what
 * the engine does into an mbuf, so that copy is in the figures.
 */
#include <benchmark/benchmark.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <x86intrin.h>

extern "C" {
#include "ustest.h"
}

namespace
{

constexpr uint16_t kPort = 80;
constexpr uint16_t kClosedPort = 81;
constexpr size_t kMss = 1448;
constexpr uint16_t kPeerWindow = 65535; /* scaled by 2^7 */

double tsc_hz;
uint64_t bracket_cycles;

inline uint64_t
tsc_begin()
{
	_mm_lfence();
	return __rdtsc();
}

inline uint64_t
tsc_end()
{
	unsigned aux;
	uint64_t t = __rdtscp(&aux);

	_mm_lfence();
	return t;
}

uint64_t
mono_ns()
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* TSC ticks per second over 100 ms of the monotonic clock. */
void
calibrate_tsc()
{
	uint64_t ns0 = mono_ns(), c0 = __rdtsc(), ns1, c1;
	uint64_t best = UINT64_MAX;

	do {
		ns1 = mono_ns();
	} while (ns1 - ns0 < 100000000u);
	c1 = __rdtsc();
	tsc_hz = (double)(c1 - c0) * 1e9 / (double)(ns1 - ns0);

	/* The cheapest empty bracket is the part that is not the stack. */
	for (int i = 0; i < 10000; i++) {
		uint64_t t0 = tsc_begin(), t1 = tsc_end();

		if (t1 - t0 < best)
			best = t1 - t0;
	}
	bracket_cycles = best;
}

/*
 * One stack at 10.0.0.1 and a crafted peer at 10.0.0.2 talking to it. The
 * stack's frames are counted and the last one kept, so the peer can read
 * the sequence and timestamp to answer.
 */
struct Bed {
	struct ust_stack *st = nullptr;
	struct ust_conn *conn = nullptr;
	uint64_t now = 1000000;

	uint64_t frames_out = 0;
	uint8_t last[2048];
	size_t last_len = 0;
	uint64_t drained = 0;
	uint8_t rxbuf[65536];

	/* The peer's side of the connection. */
	uint16_t peer_port = 40000;
	uint32_t peer_seq = 1000000, peer_ack = 0;
	uint32_t tsval = 5000, tsecr = 0;

	uint64_t cycles = 0;

	Bed();
	~Bed();
	Bed(const Bed &) = delete;
	Bed &operator=(const Bed &) = delete;

	bool establish();
	size_t segment(uint8_t *frame, uint32_t seq, uint8_t flags, const void *data, size_t len,
		       uint16_t dport = kPort);
	void learn();
	void input(const uint8_t *frame, size_t len);
	uint64_t timed_input(const uint8_t *frame, size_t len);
	bool ack_everything();
};

int
on_tx(void *arg, const void *frame, size_t len, unsigned /* tx_flags */)
{
	Bed *b = static_cast<Bed *>(arg);

	if (len > sizeof(b->last))
		return -1;
	std::memcpy(b->last, frame, len);
	b->last_len = len;
	b->frames_out++;
	return 0;
}

void
on_accept(void *arg, struct ust_listener * /* l */, struct ust_conn *conn)
{
	static_cast<Bed *>(arg)->conn = conn;
}

/* The application reads everything at once, as usher's engine does. */
void
on_readable(void *arg, struct ust_conn *conn)
{
	Bed *b = static_cast<Bed *>(arg);
	long n;

	while ((n = ust_recv(conn, b->rxbuf, sizeof(b->rxbuf))) > 0)
		b->drained += (uint64_t)n;
}

void
on_closed(void *arg, struct ust_conn *conn, enum ust_close_reason /* reason */)
{
	Bed *b = static_cast<Bed *>(arg);

	if (b->conn == conn)
		b->conn = nullptr;
}

Bed::Bed()
{
	struct ust_config cfg, defaults;
	struct ust_ops ops;
	struct ust_listener *l;
	uint8_t f[64];

	/* The addresses of the unit tests, the sizes the DPDK engine uses. */
	rig_config(&cfg);
	ust_config_defaults(&defaults);
	cfg.max_conns = defaults.max_conns;
	cfg.syn_backlog = defaults.syn_backlog;
	cfg.sndbuf = defaults.sndbuf;
	cfg.rcvbuf = defaults.rcvbuf;

	std::memset(&ops, 0, sizeof(ops));
	ops.arg = this;
	ops.tx = on_tx;
	ops.on_accept = on_accept;
	ops.on_readable = on_readable;
	ops.on_closed = on_closed;
	if (ust_stack_create(&cfg, &ops, &st) != 0) {
		st = nullptr;
		return;
	}

	/* The peer's MAC, so nothing waits for ARP. */
	static const uint8_t zero_mac[6] = {0};
	input(f, build_arp(f, 1, MAC_PEER, IP_PEER, zero_mac, IP_US, MAC_US));
	if (ust_listen(st, kPort, nullptr, &l) != 0) {
		ust_stack_destroy(st);
		st = nullptr;
	}
}

Bed::~Bed()
{
	if (st != nullptr)
		ust_stack_destroy(st);
}

/* A segment from the peer with its timestamp option, checksums right. */
size_t
Bed::segment(uint8_t *frame, uint32_t seq, uint8_t flags, const void *data, size_t len,
	     uint16_t dport)
{
	uint8_t opts[40];
	struct tcpb b;

	std::memset(&b, 0, sizeof(b));
	b.src = IP_PEER;
	b.dst = IP_US;
	b.sport = peer_port;
	b.dport = dport;
	b.seq = seq;
	b.ack = peer_ack;
	b.flags = flags;
	b.wnd = kPeerWindow;
	b.opts = opts;
	b.optlen = opts_ts(opts, tsval++, tsecr);
	b.data = data;
	b.len = len;
	return build_tcp(frame, &b);
}

/* Take the timestamp to echo and the sequence to acknowledge. */
void
Bed::learn()
{
	struct tcpv v;

	if (!parse_tcp(last, last_len, &v))
		return;
	if (v.ts_ok)
		tsecr = v.tsval;
	peer_ack = v.seq + (uint32_t)v.len + !!(v.flags & (F_SYN | F_FIN));
}

void
Bed::input(const uint8_t *frame, size_t len)
{
	ust_input(st, frame, len, 0, ++now);
}

/* The cycles of one ust_input, bracket removed, also summed in cycles. */
uint64_t
Bed::timed_input(const uint8_t *frame, size_t len)
{
	uint64_t t0, t1, c;

	now++;
	t0 = tsc_begin();
	ust_input(st, frame, len, 0, now);
	t1 = tsc_end();
	c = t1 - t0 > bracket_cycles ? t1 - t0 - bracket_cycles : 0;
	cycles += c;
	return c;
}

/* SYN with MSS 1460, WS 7 and timestamps; SYN-ACK; ACK. */
bool
Bed::establish()
{
	uint8_t f[2048], opts[40];
	struct tcpb b;

	if (st == nullptr)
		return false;

	std::memset(&b, 0, sizeof(b));
	b.src = IP_PEER;
	b.dst = IP_US;
	b.sport = peer_port;
	b.dport = kPort;
	b.seq = peer_seq++;
	b.flags = F_SYN;
	b.wnd = kPeerWindow;
	b.opts = opts;
	b.optlen = opts_syn(opts, 1460, 7, true, tsval++, 0);
	input(f, build_tcp(f, &b));
	learn();

	input(f, segment(f, peer_seq, F_ACK, nullptr, 0));
	return conn != nullptr;
}

/* Acknowledge all the stack sent until nothing is queued; false if stuck. */
bool
Bed::ack_everything()
{
	uint8_t f[128];
	struct ust_conn_info info;

	for (int round = 0; round < 64; round++) {
		ust_conn_info(conn, &info);
		if (info.snd_queued == 0)
			return true;
		learn();
		input(f, segment(f, peer_seq, F_ACK, nullptr, 0));
	}
	return false;
}

/* cycles_per_packet, Mpps and the Time column from the summed cycles. */
void
report(benchmark::State &state, const Bed &bed, double packets)
{
	double per = packets > 0 ? (double)bed.cycles / packets : 0;

	state.counters["cycles_per_packet"] = per;
	state.counters["Mpps"] = per > 0 ? tsc_hz / per / 1e6 : 0;
}

void
set_time(benchmark::State &state, uint64_t cycles)
{
	state.SetIterationTime((double)cycles / tsc_hz);
}

const struct ust_counters *
ctr(const Bed &bed)
{
	return ust_counters(bed.st);
}

uint64_t
total_drops(const Bed &bed)
{
	uint64_t sum = 0;

	for (int i = 0; i < UST_DROP_MAX; i++)
		sum += ctr(bed)->drops[i];
	return sum;
}

void
rx_ack_pure(benchmark::State &state)
{
	Bed bed;
	uint8_t f[128];
	uint64_t drops0;

	if (!bed.establish()) {
		state.SkipWithError("no connection");
		return;
	}
	drops0 = total_drops(bed);
	for (auto _ : state) {
		size_t n = bed.segment(f, bed.peer_seq, F_ACK, nullptr, 0);

		set_time(state, bed.timed_input(f, n));
	}
	if (total_drops(bed) != drops0 || bed.conn == nullptr)
		state.SkipWithError("an ACK was dropped");
	report(state, bed, (double)state.iterations());
}

void
rx_ack_new_data(benchmark::State &state)
{
	Bed bed;
	uint8_t f[128];
	static const uint8_t payload[kMss] = {0};

	if (!bed.establish()) {
		state.SkipWithError("no connection");
		return;
	}
	for (auto _ : state) {
		size_t n;

		if (ust_send(bed.conn, payload, kMss) != (long)kMss) {
			state.SkipWithError("ust_send refused");
			return;
		}
		bed.learn();
		n = bed.segment(f, bed.peer_seq, F_ACK, nullptr, 0);
		set_time(state, bed.timed_input(f, n));
	}

	struct ust_conn_info info;

	ust_conn_info(bed.conn, &info);
	if (info.snd_queued != 0)
		state.SkipWithError("the ACKs did not free the send buffer");
	report(state, bed, (double)state.iterations());
}

void
rx_data_in_order(benchmark::State &state)
{
	Bed bed;
	uint8_t f[2048];
	static const uint8_t payload[kMss] = {'x'};

	if (!bed.establish()) {
		state.SkipWithError("no connection");
		return;
	}
	for (auto _ : state) {
		size_t n = bed.segment(f, bed.peer_seq, F_ACK | F_PSH, payload, kMss);

		set_time(state, bed.timed_input(f, n));
		bed.peer_seq += kMss;
		ust_timers(bed.st, bed.now);
	}
	if (bed.drained != (uint64_t)state.iterations() * kMss)
		state.SkipWithError("the application did not get every byte");
	report(state, bed, (double)state.iterations());
	state.SetBytesProcessed((int64_t)bed.drained);
}

void
rx_data_out_of_order(benchmark::State &state)
{
	Bed bed;
	uint8_t f[2048];
	static const uint8_t payload[kMss] = {'x'};

	if (!bed.establish()) {
		state.SkipWithError("no connection");
		return;
	}
	for (auto _ : state) {
		size_t n = bed.segment(f, bed.peer_seq + kMss, F_ACK | F_PSH, payload, kMss);

		set_time(state, bed.timed_input(f, n));
		bed.input(f, bed.segment(f, bed.peer_seq, F_ACK | F_PSH, payload, kMss));
		bed.peer_seq += 2 * kMss;
		ust_timers(bed.st, bed.now);
	}
	if (bed.drained != (uint64_t)state.iterations() * 2 * kMss)
		state.SkipWithError("the reordered bytes were not all delivered");
	report(state, bed, (double)state.iterations());
}

/* Each SYN from a new port; an RST (untimed) frees the half-open entry. */
void
rx_syn_listener(benchmark::State &state)
{
	Bed bed;
	uint8_t f[2048], opts[40];
	uint64_t opens0 = ctr(bed)->tcp_passive_opens;
	struct tcpb b;

	std::memset(&b, 0, sizeof(b));
	b.src = IP_PEER;
	b.dst = IP_US;
	b.dport = kPort;
	b.flags = F_SYN;
	b.wnd = kPeerWindow;
	b.opts = opts;
	for (auto _ : state) {
		size_t n;

		bed.peer_port = (uint16_t)(bed.peer_port == 60000 ? 1024 : bed.peer_port + 1);
		b.sport = bed.peer_port;
		b.seq = bed.peer_seq;
		b.optlen = opts_syn(opts, 1460, 7, true, bed.tsval++, 0);
		n = build_tcp(f, &b);
		set_time(state, bed.timed_input(f, n));

		bed.learn();
		bed.input(f, bed.segment(f, bed.peer_seq + 1, F_RST, nullptr, 0));
	}
	if (ctr(bed)->tcp_passive_opens - opens0 != (uint64_t)state.iterations())
		state.SkipWithError("not every SYN got a SYN-ACK");
	if (ctr(bed)->tcp_conns != 0)
		state.SkipWithError("half-open connections were left behind");
	report(state, bed, (double)state.iterations());
}

void
rx_unknown_conn(benchmark::State &state)
{
	Bed bed;
	uint8_t f[128];
	uint64_t rst0 = ctr(bed)->tcp_resets_tx;

	for (auto _ : state) {
		size_t n = bed.segment(f, bed.peer_seq, F_ACK, nullptr, 0, kClosedPort);

		set_time(state, bed.timed_input(f, n));
	}
	if (ctr(bed)->tcp_resets_tx - rst0 != (uint64_t)state.iterations())
		state.SkipWithError("not every segment got an RST");
	report(state, bed, (double)state.iterations());
}

void
rx_arp_request(benchmark::State &state)
{
	Bed bed;
	uint8_t f[64];
	static const uint8_t zero_mac[6] = {0};
	static const uint8_t broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	size_t n = build_arp(f, 1, MAC_PEER, IP_PEER, zero_mac, IP_US, broadcast);
	uint64_t replies0 = bed.st ? ctr(bed)->arp_replies_tx : 0;

	if (bed.st == nullptr) {
		state.SkipWithError("no stack");
		return;
	}
	for (auto _ : state)
		set_time(state, bed.timed_input(f, n));
	if (ctr(bed)->arp_replies_tx - replies0 != (uint64_t)state.iterations())
		state.SkipWithError("not every request got a reply");
	report(state, bed, (double)state.iterations());
}

/* A full-size segment spoiled in one header byte's checksum. */
void
rx_bad_csum(benchmark::State &state, bool ip_header, enum ust_drop want)
{
	Bed bed;
	uint8_t f[2048];
	static const uint8_t payload[kMss] = {'x'};
	uint64_t drops0;

	if (!bed.establish()) {
		state.SkipWithError("no connection");
		return;
	}
	drops0 = ctr(bed)->drops[want];
	for (auto _ : state) {
		size_t n = bed.segment(f, bed.peer_seq, F_ACK | F_PSH, payload, kMss);

		f[ip_header ? 14 + 10 : 14 + 20 + 16] ^= 0x5a;
		set_time(state, bed.timed_input(f, n));
	}
	if (ctr(bed)->drops[want] - drops0 != (uint64_t)state.iterations() || bed.drained != 0)
		state.SkipWithError("a bad checksum was not dropped as such");
	report(state, bed, (double)state.iterations());
}

/* Cycles per frame ust_send produces; the peer ACKs it all, untimed. */
void
tx_send_16k(benchmark::State &state)
{
	Bed bed;
	static const uint8_t payload[16384] = {'y'};
	uint64_t frames = 0, calls = 0;

	if (!bed.establish()) {
		state.SkipWithError("no connection");
		return;
	}
	for (auto _ : state) {
		uint64_t before = bed.frames_out, t0, t1, c;
		long n;

		t0 = tsc_begin();
		n = ust_send(bed.conn, payload, sizeof(payload));
		t1 = tsc_end();
		c = t1 - t0 > bracket_cycles ? t1 - t0 - bracket_cycles : 0;
		bed.cycles += c;
		frames += bed.frames_out - before;
		calls++;
		set_time(state, c);

		if (n != (long)sizeof(payload) || !bed.ack_everything()) {
			state.SkipWithError("the send buffer did not drain");
			return;
		}
		ust_timers(bed.st, bed.now);
	}
	report(state, bed, (double)frames);
	state.counters["frames_per_send"] = calls ? (double)frames / (double)calls : 0;
	state.SetBytesProcessed((int64_t)(calls * sizeof(payload)));
}

void
register_all()
{
	benchmark::RegisterBenchmark("stack/rx_ack_pure", rx_ack_pure)->UseManualTime();
	benchmark::RegisterBenchmark("stack/rx_ack_new_data", rx_ack_new_data)->UseManualTime();
	benchmark::RegisterBenchmark("stack/rx_data_in_order", rx_data_in_order)->UseManualTime();
	benchmark::RegisterBenchmark("stack/rx_data_out_of_order", rx_data_out_of_order)
		->UseManualTime();
	benchmark::RegisterBenchmark("stack/rx_syn_listener", rx_syn_listener)->UseManualTime();
	benchmark::RegisterBenchmark("stack/rx_unknown_conn", rx_unknown_conn)->UseManualTime();
	benchmark::RegisterBenchmark("stack/rx_arp_request", rx_arp_request)->UseManualTime();
	benchmark::RegisterBenchmark("stack/rx_bad_tcp_csum", rx_bad_csum, false, UST_DROP_TCP_CSUM)
		->UseManualTime();
	benchmark::RegisterBenchmark("stack/rx_bad_ip_csum", rx_bad_csum, true, UST_DROP_IP_CSUM)
		->UseManualTime();
	benchmark::RegisterBenchmark("stack/tx_send_16k", tx_send_16k)->UseManualTime();
}

} // namespace

int
main(int argc, char **argv)
{
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 1;

	calibrate_tsc();
	benchmark::AddCustomContext("tsc_mhz", std::to_string(tsc_hz / 1e6));
	benchmark::AddCustomContext("tsc_bracket_cycles", std::to_string(bracket_cycles));

	register_all();
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	return 0;
}
