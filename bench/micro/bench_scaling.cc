/*
 * Thread scaling of resumed handshakes: 1..ncpu threads, each with its
 * own client, resuming against
 *
 *   scaling/VER/shards_libctx  usher's layout: every thread its own
 *                           OSSL_LIB_CTX, and in it its own SSL_CTX (own
 *                           certificate and key objects) with its own
 *                           tkc_shard, all shards over one key source; the
 *                           thread's client lives in that context too;
 *   scaling/VER/shards      the same, all in OpenSSL's default library
 *                           context (usher's layout before it gave each
 *                           worker a context);
 *   scaling/VER/shared_ctx  one SSL_CTX for all threads. A tkc_shard is
 *                           single-threaded by contract, so it cannot be
 *                           the shared context's ticket handler; the
 *                           honest shared setup is the one a terminator
 *                           without per-thread contexts runs: OpenSSL's
 *                           built-in ticket keys, server session cache off
 *                           (stateless tickets, like usher's). Everything
 *                           else (certificate, groups, ciphers, modes) is
 *                           the same.
 *
 *   scaling/control/spin    no OpenSSL at all: a dependent chain of
 *                           multiplications in registers, about as long as
 *                           a resumed TLS 1.2 handshake. It scales by
 *                           whatever the machine lends at that moment, so
 *                           on a shared machine it tells a shortfall of the
 *                           handshakes from one of the machine.
 *
 * Real time and items_per_second (handshakes per second over all threads)
 * are what count: both sides run in the thread, so a perfect 2-thread run
 * does twice the handshakes per second. scaling.py prints the ratios;
 * the target is 1.9x from 1 to 2 threads for usher's layout. Each is run
 * five times: load elsewhere only takes throughput away, so scaling.py
 * takes the best run as the figure of record and shows the median beside
 * it.
 *
 * Per-thread SSL_CTX keep threads apart in libssl only: libcrypto's
 * default library context, with its method store, name map, property
 * cache and primary random generator, is shared by every thread and
 * locked many times per handshake (bench/run-profile lists the callers).
 * shards against shards_libctx tells what that sharing costs; see
 * README.md for the figures and the locks a context of its own leaves.
 */
#include <algorithm>
#include <mutex>
#include <string>
#include <thread>

#include "micro.h"

namespace
{

constexpr int kRepetitions = 5;
constexpr int kControlSteps = 20000;

/* Shared by the threads of a run: usher's key source and the one SSL_CTX. */
struct Shared {
	std::once_flag once;
	struct tkc_source *source = nullptr;
	struct hs_server server = {};
	bool ready = false;
} shared;

void
make_shared()
{
	shared.source = micro::derived_source(micro::kRotation, micro::kLifetime);
	shared.ready = shared.source != nullptr && hs_server_builtin(&shared.server) == 0;
}

enum class Layout { kShards, kShardsLibctx, kSharedCtx };

const char *
layout_name(Layout layout)
{
	switch (layout) {
	case Layout::kShards:
		return "shards";
	case Layout::kShardsLibctx:
		return "shards_libctx";
	case Layout::kSharedCtx:
		return "shared_ctx";
	}
	return "?";
}

/* What one thread drives: its client, its server (or the shared one). */
struct Lane {
	OSSL_LIB_CTX *libctx = nullptr; /* own context; nullptr: the default */
	struct hs_server own = {};
	struct hs_server *server = nullptr;
	struct hs_client client = {};
	SSL_SESSION *session = nullptr;

	Lane(int version, Layout layout);
	~Lane();
	Lane(const Lane &) = delete;
	Lane &operator=(const Lane &) = delete;
};

Lane::Lane(int version, Layout layout)
{
	std::call_once(shared.once, make_shared);
	if (!shared.ready)
		return;

	if (layout == Layout::kShardsLibctx && (libctx = OSSL_LIB_CTX_new()) == nullptr)
		return;

	if (hs_client_init_ex(&client, version, libctx) != 0)
		return;

	if (layout == Layout::kSharedCtx) {
		server = &shared.server;
	} else {
		if (hs_server_usher_ex(&own, shared.source, libctx) != 0)
			return;
		server = &own;
	}

	session = hs_fetch_session(&client, server);
}

/* Everything made in the context goes before it. */
Lane::~Lane()
{
	SSL_SESSION_free(session);
	hs_client_free(&client);
	hs_server_free(&own);
	OSSL_LIB_CTX_free(libctx);
}

void
bm_scaling(benchmark::State &state, int version, Layout layout)
{
	Lane lane(version, layout);
	micro::Tally tally;

	if (lane.session == nullptr) {
		state.SkipWithError("cannot set up a resumable session");
		return;
	}

	for (auto _ : state) {
		struct hs_result res;
		int rc = hs_connect(&lane.client, lane.server, lane.session, &res);

		if (!micro::record(state, rc, res, true))
			break;
		tally.add(res);
	}

	state.SetItemsProcessed(state.iterations());
	tally.report(state);
}

/* Work with no memory traffic at all: nothing two threads could share. */
void
bm_control(benchmark::State &state)
{
	uint64_t x = (uint64_t)state.thread_index() + 1;

	for (auto _ : state) {
		for (int i = 0; i < kControlSteps; i++)
			x = x * 6364136223846793005u + 1442695040888963407u;
		benchmark::DoNotOptimize(x);
	}

	state.SetItemsProcessed(state.iterations());
}

} // namespace

void
register_scaling_benchmarks()
{
	int ncpu = (int)std::max(2u, std::thread::hardware_concurrency());

	benchmark::RegisterBenchmark("scaling/control/spin", bm_control)
		->DenseThreadRange(1, ncpu)
		->UseRealTime()
		->Repetitions(kRepetitions);

	for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
		const char *ver = version == TLS1_3_VERSION ? "tls13" : "tls12";

		for (Layout layout : {Layout::kShards, Layout::kShardsLibctx, Layout::kSharedCtx}) {
			std::string name =
				std::string("scaling/") + ver + "/" + layout_name(layout);

			benchmark::RegisterBenchmark(name.c_str(), bm_scaling, version, layout)
				->DenseThreadRange(1, ncpu)
				->UseRealTime()
				->Repetitions(kRepetitions);
		}
	}
}

void
release_scaling_benchmarks()
{
	hs_server_free(&shared.server);
	tkc_source_unref(shared.source);
	shared.source = nullptr;
}
