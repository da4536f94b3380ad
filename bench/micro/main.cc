/*
 * The microbenchmark program: makes the certificate, registers every
 * benchmark and runs them with Google Benchmark's usual flags
 * (--benchmark_filter, --benchmark_format=json, ...).
 */
#include <cstdio>
#include <string>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "micro.h"

namespace micro
{

const unsigned char kSecret[32] = "usher bench secret, 32 bytes...";

std::vector<unsigned char>
random_keys(size_t n)
{
	std::vector<unsigned char> keys(n * TKC_KEY_FILE_LEN);

	if (RAND_bytes(keys.data(), (int)keys.size()) != 1)
		keys.clear();
	return keys;
}

struct tkc_source *
derived_source(uint64_t rotation, uint64_t lifetime)
{
	struct tkc_source *src = nullptr;

	if (tkc_source_derived(kSecret, sizeof(kSecret), rotation, lifetime, &src) != 0)
		return nullptr;
	return src;
}

struct tkc_source *
explicit_source(const unsigned char *keys, size_t count)
{
	struct tkc_source *src = nullptr;

	if (keys == nullptr || tkc_source_explicit(keys, count, kLifetime, &src) != 0)
		return nullptr;
	return src;
}

bool
record(benchmark::State &state, int rc, const struct hs_result &res, bool want_reused)
{
	if (rc != 0) {
		state.SkipWithError("handshake failed");
		return false;
	}

	/* A broken resumption must not pass for a fast one. */
	if (res.reused != want_reused) {
		state.SkipWithError(want_reused ? "session not resumed" : "session resumed");
		return false;
	}

	state.SetIterationTime((double)res.server_hs_ns / 1e9);
	return true;
}

void
Tally::report(benchmark::State &state) const
{
	double n = state.iterations() > 0 ? (double)state.iterations() : 1.0;

	state.counters["server_us_per_handshake"] =
		benchmark::Counter((double)hs_ns / 1e3 / n, benchmark::Counter::kAvgThreads);
	state.counters["server_conn_us"] =
		benchmark::Counter((double)conn_ns / 1e3 / n, benchmark::Counter::kAvgThreads);
}

} // namespace micro

int
main(int argc, char **argv)
{
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 1;

	if (hs_identity_init() != 0) {
		std::fprintf(stderr, "bench_micro: cannot make the ECDSA P-256 test certificate\n");
		return 1;
	}

	benchmark::AddCustomContext("openssl", OpenSSL_version(OPENSSL_VERSION));
	benchmark::AddCustomContext("clock_overhead_ns", std::to_string(hs_clock_overhead_ns()));

	register_tkc_benchmarks();
	register_handshake_benchmarks();
	register_scaling_benchmarks();
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();

	release_scaling_benchmarks();
	hs_identity_free();
	return 0;
}
