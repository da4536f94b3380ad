/*
 * ticketcache on its own: the appdata codec, key lookups in schedules of
 * 1, 4 and 32 keys, and the real ticket key callback issuing a ticket.
 *
 *   tkc/appdata_{encode,decode}      the record every ticket carries
 *   tkc/encrypt_key/KIND/keys:N      which key encrypts a new ticket
 *   tkc/lookup_oldest/KIND/keys:N    the decrypt-side lookup of an old key
 *   tkc/lookup_unknown/KIND/keys:N   a name from another schedule
 *   tkc/ticket_issue/KIND/keys:N     one TLS 1.3 NewSessionTicket written
 *                                    through the shard (server CPU)
 *   openssl/hmac_params/...          what setting the HMAC key costs with
 *                                    and without naming the digest
 *
 * KIND is explicit (key files: N keys, the first encrypts) or derived (a
 * secret: a window of N epochs, which is at least 3, so no keys:1).
 *
 * OpenSSL runs the key callback's decrypt side only while it parses a
 * ClientHello, so it is priced inside handshake/VER/resumed_* (current
 * against oldest key) rather than alone. TODO(#4): a ClientHello replayed
 * into a fresh server SSL would isolate it.
 */
#include <cstring>
#include <string>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "micro.h"

namespace
{

using micro::kRotation;

/* A moment at the start of an epoch, so the window is exactly as built. */
constexpr uint64_t kNow = kRotation * 480000;

/* A keyset of n keys and the names the lookups ask for. */
struct Schedule {
	size_t count;
	struct tkc_source *src = nullptr;
	struct tkc_keyset *keys = nullptr;
	unsigned char oldest[TKC_KEY_NAME_LEN] = {};
	unsigned char unknown[TKC_KEY_NAME_LEN] = {};

	Schedule(bool derived, size_t n);
	~Schedule();
	Schedule(const Schedule &) = delete;
	Schedule &operator=(const Schedule &) = delete;

	bool ok() const
	{
		return keys != nullptr && tkc_keyset_count(keys) == count;
	}
};

/* A derived window is back + 2 epochs: the older ones, the current, the next. */
Schedule::Schedule(bool derived, size_t n) : count(n)
{
	if (derived) {
		uint64_t back = n - 2;
		struct tkc_key oldest_key;

		src = micro::derived_source(kRotation, back * kRotation);
		if (tkc_derive_key(micro::kSecret, sizeof(micro::kSecret), kNow / kRotation - back,
				   &oldest_key) == 0)
			std::memcpy(oldest, oldest_key.name, sizeof(oldest));
		OPENSSL_cleanse(&oldest_key, sizeof(oldest_key));
	} else {
		std::vector<unsigned char> material = micro::random_keys(n);

		src = micro::explicit_source(material.data(), n);
		std::memcpy(oldest, material.data() + (n - 1) * TKC_KEY_FILE_LEN, sizeof(oldest));
		OPENSSL_cleanse(material.data(), material.size());
	}

	std::memset(unknown, 0x5a, sizeof(unknown));
	if (src != nullptr && tkc_keyset_build(src, kNow, &keys) != 0)
		keys = nullptr;
}

Schedule::~Schedule()
{
	tkc_keyset_free(keys);
	tkc_source_unref(src);
}

const char *
kind_name(bool derived)
{
	return derived ? "derived" : "explicit";
}

/* ---- appdata ------------------------------------------------------------ */

struct tkc_appdata
sample_appdata()
{
	struct tkc_appdata ad = {};

	ad.listener_tag = tkc_listener_tag("https");
	ad.first_handshake_s = kNow;
	ad.server_id_len = sizeof(HS_SERVER_ID) - 1;
	std::memcpy(ad.server_id, HS_SERVER_ID, ad.server_id_len);
	return ad;
}

void
bm_appdata_encode(benchmark::State &state)
{
	struct tkc_appdata ad = sample_appdata();
	unsigned char buf[TKC_APPDATA_MAX];

	for (auto _ : state) {
		int len = tkc_appdata_encode(&ad, buf, sizeof(buf));

		benchmark::DoNotOptimize(len);
		benchmark::ClobberMemory();
	}
}

void
bm_appdata_decode(benchmark::State &state)
{
	struct tkc_appdata ad = sample_appdata(), out;
	unsigned char buf[TKC_APPDATA_MAX];
	int len = tkc_appdata_encode(&ad, buf, sizeof(buf));

	if (len < 0) {
		state.SkipWithError("tkc_appdata_encode failed");
		return;
	}

	for (auto _ : state) {
		int rc = tkc_appdata_decode(buf, (size_t)len, &out);

		benchmark::DoNotOptimize(rc);
		benchmark::ClobberMemory();
	}
}

/* ---- key lookups -------------------------------------------------------- */

void
bm_encrypt_key(benchmark::State &state, bool derived, size_t n)
{
	Schedule sched(derived, n);

	if (!sched.ok()) {
		state.SkipWithError("cannot build the key schedule");
		return;
	}

	for (auto _ : state)
		benchmark::DoNotOptimize(tkc_keyset_encrypt_key(sched.keys));
}

void
bm_lookup(benchmark::State &state, bool derived, size_t n, bool known)
{
	Schedule sched(derived, n);
	const unsigned char *name = known ? sched.oldest : sched.unknown;
	bool is_current = false;

	if (!sched.ok() || (tkc_keyset_lookup(sched.keys, name, nullptr) != nullptr) != known) {
		state.SkipWithError("the lookup does not find what it should");
		return;
	}

	for (auto _ : state) {
		benchmark::DoNotOptimize(tkc_keyset_lookup(sched.keys, name, &is_current));
		benchmark::ClobberMemory();
	}
}

/* ---- the real key callback, through OpenSSL ----------------------------- */

/*
 * One established TLS 1.3 connection on a server with a shard over the
 * schedule; each iteration makes the server write one more ticket, which
 * runs on_ticket_generate, on_ticket_key(enc=1) and OpenSSL's encryption
 * and MAC of the session. Server CPU only (hs_pair.h).
 */
void
bm_ticket_issue(benchmark::State &state, bool derived, size_t n)
{
	Schedule sched(derived, n);
	struct hs_server server;
	struct hs_client client;
	struct hs_conn conn;
	struct tkc_counters before, after;

	if (!sched.ok() || hs_server_usher(&server, sched.src) != 0) {
		state.SkipWithError("cannot set up the server");
		return;
	}

	if (hs_client_init(&client, TLS1_3_VERSION) != 0 ||
	    hs_conn_open(&conn, &client, &server) != 0) {
		state.SkipWithError("cannot open a TLS 1.3 connection");
		hs_client_free(&client);
		hs_server_free(&server);
		return;
	}

	tkc_shard_read_counters(server.shard, &before);
	for (auto _ : state) {
		uint64_t ns = 0;

		if (hs_conn_issue_ticket(&conn, &ns) != 0) {
			state.SkipWithError("SSL_new_session_ticket() failed");
			break;
		}
		state.SetIterationTime((double)ns / 1e9);
	}

	/* Every iteration must have gone through the shard. */
	tkc_shard_read_counters(server.shard, &after);
	if (after.tickets_issued - before.tickets_issued != (uint64_t)state.iterations())
		state.SkipWithError("tickets were not issued by the shard");

	hs_conn_close(&conn);
	hs_client_free(&client);
	hs_server_free(&server);
}

/* ---- OpenSSL: the HMAC key of a ticket ---------------------------------- */

/*
 * The key callback sets the ticket's HMAC key with the digest named as
 * "SHA256", because OpenSSL 3.0 makes a fresh EVP_MAC_CTX per ticket and
 * it has no digest yet; the provider resolves that name on every ticket
 * (TODO(#4) in tkc_shard.c). key_and_digest is what the callback pays,
 * key_only what it would pay if the digest could be set once.
 */
void
bm_hmac_params(benchmark::State &state, bool with_digest)
{
	EVP_MAC *mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
	EVP_MAC_CTX *ctx = mac != nullptr ? EVP_MAC_CTX_new(mac) : nullptr;
	unsigned char key[TKC_HMAC_KEY_LEN] = {1};
	char digest[] = "SHA256";
	OSSL_PARAM params[3];

	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, sizeof(key));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
	params[2] = OSSL_PARAM_construct_end();

	/* Both start from a context whose digest is already set. */
	if (ctx == nullptr || EVP_MAC_CTX_set_params(ctx, params) != 1) {
		state.SkipWithError("cannot make an HMAC context");
	} else {
		if (!with_digest)
			params[1] = OSSL_PARAM_construct_end();

		for (auto _ : state) {
			if (EVP_MAC_CTX_set_params(ctx, params) != 1) {
				state.SkipWithError("EVP_MAC_CTX_set_params() failed");
				break;
			}
		}
	}

	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
}

/* One benchmark per kind of schedule and key count: 1, 4 and 32. */
void
register_schedules(const char *what, void (*fn)(benchmark::State &, bool, size_t), bool manual_time)
{
	for (bool derived : {false, true}) {
		for (size_t n : {1, 4, 32}) {
			std::string name = std::string("tkc/") + what + "/" + kind_name(derived) +
					   "/keys:" + std::to_string(n);
			benchmark::internal::Benchmark *b;

			if (derived && n < 3)
				continue;
			b = benchmark::RegisterBenchmark(name.c_str(), fn, derived, n);
			if (manual_time)
				b->UseManualTime();
		}
	}
}

void
bm_lookup_oldest(benchmark::State &state, bool derived, size_t n)
{
	bm_lookup(state, derived, n, true);
}

void
bm_lookup_unknown(benchmark::State &state, bool derived, size_t n)
{
	bm_lookup(state, derived, n, false);
}

} // namespace

void
register_tkc_benchmarks()
{
	benchmark::RegisterBenchmark("tkc/appdata_encode", bm_appdata_encode);
	benchmark::RegisterBenchmark("tkc/appdata_decode", bm_appdata_decode);
	register_schedules("encrypt_key", bm_encrypt_key, false);
	register_schedules("lookup_oldest", bm_lookup_oldest, false);
	register_schedules("lookup_unknown", bm_lookup_unknown, false);
	register_schedules("ticket_issue", bm_ticket_issue, true);
	benchmark::RegisterBenchmark("openssl/hmac_params/key_and_digest", bm_hmac_params, true);
	benchmark::RegisterBenchmark("openssl/hmac_params/key_only", bm_hmac_params, false);
}
