/*
 * micro: usher's microbenchmarks (issue #4). Each file registers its own
 * benchmarks; main.cc runs them.
 *
 * Units: the "Time" column of a handshake or ticket benchmark is the
 * server's thread CPU per operation (UseManualTime, fed from hs_pair's
 * CLOCK_THREAD_CPUTIME_ID brackets), never the wall time of the loop,
 * which also pays for the client. Thread scaling benchmarks are the
 * exception: they report real time and items_per_second over all
 * threads, client included, because what scales is the whole box.
 */
#ifndef USHER_MICRO_H
#define USHER_MICRO_H

#include <benchmark/benchmark.h>
#include <cstdint>
#include <vector>

#include "hs_pair.h"
#include "tkc.h"

void register_tkc_benchmarks();
void register_handshake_benchmarks();
void register_scaling_benchmarks();
void release_scaling_benchmarks();

namespace micro
{

/* The key schedules the benchmarks use. */
constexpr uint64_t kRotation = 3600;      /* usher's example: 1h */
constexpr uint64_t kLifetime = 12 * 3600; /* and 12h */

/* n random keys in nginx's 80-byte layout, back to back. */
std::vector<unsigned char> random_keys(size_t n);

/* A derived source over a fixed 32-byte secret; nullptr on failure. */
struct tkc_source *derived_source(uint64_t rotation, uint64_t lifetime);

/* An explicit source of keys (count 80-byte records); nullptr on failure. */
struct tkc_source *explicit_source(const unsigned char *keys, size_t count);

/* The secret derived_source() uses, for tkc_derive_key(). */
extern const unsigned char kSecret[32];

/*
 * Check one handshake and hand its server CPU to the manual timer. false,
 * with the run marked as failed, when the handshake failed or did not
 * resume as expected; the caller then leaves the loop.
 */
bool record(benchmark::State &state, int rc, const struct hs_result &res, bool want_reused);

/* Server CPU summed over a run, reported per handshake as counters. */
struct Tally {
	uint64_t hs_ns = 0;
	uint64_t conn_ns = 0;

	void add(const struct hs_result &res)
	{
		hs_ns += res.server_hs_ns;
		conn_ns += res.server_conn_ns;
	}

	/*
	 * server_us_per_handshake: CPU in the server's SSL_do_handshake();
	 * server_conn_us: its SSL_new, SSL_shutdown and SSL_free. Averaged
	 * over threads, so they stay per handshake in threaded runs.
	 */
	void report(benchmark::State &state) const;
};

} // namespace micro

#endif
