/*
 * Handshakes in memory with usher's server setup: the floor, the least
 * CPU a terminator pays per handshake with this OpenSSL, an ECDSA P-256
 * certificate and usher's cipher and group choice.
 *
 *   handshake/VER/full                  no session offered; the server
 *                                       issues its tickets (1 in TLS 1.2,
 *                                       2 in TLS 1.3)
 *   handshake/VER/full_no_ticket        the same with tickets off; the
 *                                       difference prices ticket issue
 *   handshake/VER/resumed               a derived schedule (1h rotation,
 *                                       12h lifetime, as in usher's
 *                                       example); ticket under the
 *                                       current key
 *   handshake/tls13/resumed_sha384      resumed, with OpenSSL's default SHA-384 suite first
 *                                       preferred over OpenSSL's default
 *                                       TLS_AES_256_GCM_SHA384 (what-if)
 *   handshake/VER/resumed_current/keys:N  N explicit keys, ticket under
 *                                       the first (current) one
 *   handshake/VER/resumed_oldest/keys:N   ticket under the last key, so
 *                                       the shard also renews it
 *
 * The time reported is the server's thread CPU inside SSL_do_handshake()
 * (UseManualTime): hs_pair brackets each server call with
 * CLOCK_THREAD_CPUTIME_ID reads rather than PauseTiming/ResumeTiming,
 * which cost more than a resumed handshake's share of the loop and would
 * still count the client. server_conn_us adds what SSL_new, SSL_shutdown
 * and SSL_free cost the server around it.
 */
#include <string>

#include "micro.h"

namespace
{

enum class Mode { full, full_no_ticket, resumed, resumed_sha384 };

/* OpenSSL's default TLS 1.3 order: what usher's SHA-256 preference saves. */
constexpr const char *kSha384First =
	"TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";

const char *
version_name(int version)
{
	return version == TLS1_3_VERSION ? "tls13" : "tls12";
}

/* The server under test, a client and the session it offers. */
struct Rig {
	struct hs_server server = {};
	struct hs_client client = {};
	SSL_SESSION *session = nullptr;
	bool ready = false;

	Rig(int version, struct tkc_source *src);
	~Rig();
	Rig(const Rig &) = delete;
	Rig &operator=(const Rig &) = delete;
};

Rig::Rig(int version, struct tkc_source *src)
{
	if (src == nullptr || hs_server_usher(&server, src) != 0)
		return;
	ready = hs_client_init(&client, version) == 0;
}

Rig::~Rig()
{
	SSL_SESSION_free(session);
	hs_client_free(&client);
	hs_server_free(&server);
}

/*
 * Run the loop; every handshake must end as want_reused and, on a
 * resumption, with the shard's decision want_outcome.
 */
void
run_handshakes(benchmark::State &state, Rig &rig, bool want_reused, enum tkc_outcome want_outcome)
{
	micro::Tally tally;

	for (auto _ : state) {
		struct hs_result res;
		int rc = hs_connect(&rig.client, &rig.server, rig.session, &res);

		if (!micro::record(state, rc, res, want_reused))
			break;
		if (res.outcome != want_outcome) {
			state.SkipWithError("the shard decided otherwise about the ticket");
			break;
		}
		tally.add(res);
	}

	tally.report(state);
}

/* Full handshakes issue tickets through the shard, or none at all. */
void
check_tickets(benchmark::State &state, const Rig &rig, uint64_t before, bool want_tickets)
{
	struct tkc_counters now;
	uint64_t issued;

	tkc_shard_read_counters(rig.server.shard, &now);
	issued = now.tickets_issued - before;
	if (want_tickets ? issued < (uint64_t)state.iterations() : issued != 0)
		state.SkipWithError("tickets were not issued as configured");
}

void
bm_handshake(benchmark::State &state, int version, Mode mode)
{
	struct tkc_source *src = micro::derived_source(micro::kRotation, micro::kLifetime);
	Rig rig(version, src);
	struct tkc_counters before;

	tkc_source_unref(src);
	if (!rig.ready) {
		state.SkipWithError("cannot set up client and server");
		return;
	}

	if (mode == Mode::resumed_sha384 &&
	    hs_server_tls13_suites(&rig.server, kSha384First) != 0) {
		state.SkipWithError("cannot set the TLS 1.3 suites");
		return;
	}

	if (mode == Mode::resumed || mode == Mode::resumed_sha384) {
		rig.session = hs_fetch_session(&rig.client, &rig.server);
		if (rig.session == nullptr) {
			state.SkipWithError("no session to resume");
			return;
		}
		run_handshakes(state, rig, true, TKC_OUTCOME_CURRENT);
		return;
	}

	if (mode == Mode::full_no_ticket)
		hs_server_no_tickets(&rig.server);

	tkc_shard_read_counters(rig.server.shard, &before);
	run_handshakes(state, rig, false, TKC_OUTCOME_NONE);
	check_tickets(state, rig, before.tickets_issued, mode == Mode::full);
}

/*
 * Resume against a server with n explicit keys. With oldest, the ticket
 * comes from a server whose only key is the last of the n, so the shard
 * under test finds an old key, accepts it and renews the ticket.
 */
void
bm_resume_keys(benchmark::State &state, int version, size_t n, bool oldest)
{
	std::vector<unsigned char> keys = micro::random_keys(n);
	struct tkc_source *src = micro::explicit_source(keys.data(), n);
	struct tkc_source *issuer_src =
		micro::explicit_source(keys.data() + (n - 1) * TKC_KEY_FILE_LEN, 1);
	Rig rig(version, src), issuer(version, oldest ? issuer_src : src);

	OPENSSL_cleanse(keys.data(), keys.size());
	tkc_source_unref(src);
	tkc_source_unref(issuer_src);
	if (!rig.ready || !issuer.ready) {
		state.SkipWithError("cannot set up clients and servers");
		return;
	}

	rig.session = hs_fetch_session(&issuer.client, &issuer.server);
	if (rig.session == nullptr) {
		state.SkipWithError("no session to resume");
		return;
	}

	run_handshakes(state, rig, true, oldest ? TKC_OUTCOME_OLD : TKC_OUTCOME_CURRENT);
}

} // namespace

void
register_handshake_benchmarks()
{
	static const struct {
		Mode mode;
		const char *name;
		bool tls13_only;
	} modes[] = {
		{Mode::full, "full", false},
		{Mode::full_no_ticket, "full_no_ticket", false},
		{Mode::resumed, "resumed", false},
		{Mode::resumed_sha384, "resumed_sha384", true},
	};

	for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
		std::string prefix = std::string("handshake/") + version_name(version) + "/";

		for (const auto &m : modes) {
			if (m.tls13_only && version != TLS1_3_VERSION)
				continue;
			benchmark::RegisterBenchmark((prefix + m.name).c_str(), bm_handshake,
						     version, m.mode)
				->UseManualTime();
		}

		for (size_t n : {1, 4, 32})
			benchmark::RegisterBenchmark(
				(prefix + "resumed_current/keys:" + std::to_string(n)).c_str(),
				bm_resume_keys, version, n, false)
				->UseManualTime();

		for (size_t n : {4, 32})
			benchmark::RegisterBenchmark(
				(prefix + "resumed_oldest/keys:" + std::to_string(n)).c_str(),
				bm_resume_keys, version, n, true)
				->UseManualTime();
	}
}
