/*
 * cfg: the usher configuration, loaded from YAML into one immutable
 * snapshot.
 *
 * A snapshot is built once by cfg_load() and never changed afterwards, so
 * any number of threads may read it without locks. A reload builds a new
 * snapshot next to the old one; the old one is freed when its last user is
 * done with it (the proxy keeps the reference count).
 *
 * Relative paths in the file (certificates, keys, secrets) are resolved
 * against the directory of the configuration file, and stored absolute.
 */
#ifndef USHER_CFG_H
#define USHER_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CFG_TICKET_KEY_LEN    80 /* nginx layout: name(16) hmac(32) aes(32) */
#define CFG_SECRET_MIN_LEN    32
#define CFG_MAX_TICKET_WINDOW 1024       /* keys kept: lifetime / rotation_interval + 2 */
#define CFG_SECRET_MAX_LEN    4096       /* a larger secret file is refused */
#define CFG_FILE_MAX_LEN      (1u << 20) /* a larger config file is refused */
#define CFG_NAME_MAX          63         /* listener, pool and server names */
#define CFG_DIAGS_MAX         100        /* diagnostics kept; the rest are counted */

enum cfg_engine {
	CFG_ENGINE_URING = 0,
	CFG_ENGINE_DPDK = 1,
};

enum cfg_balance {
	CFG_BALANCE_ROUND_ROBIN = 0,
	CFG_BALANCE_LEAST_CONN = 1,
	CFG_BALANCE_HASH_CLIENT = 2,
};

enum cfg_proxy_protocol {
	CFG_PROXY_PROTOCOL_OFF = 0,
	CFG_PROXY_PROTOCOL_V1 = 1,
	CFG_PROXY_PROTOCOL_V2 = 2,
};

enum cfg_log_level {
	CFG_LOG_ERROR = 0,
	CFG_LOG_WARN = 1,
	CFG_LOG_INFO = 2,
	CFG_LOG_DEBUG = 3,
};

enum cfg_log_format {
	CFG_LOG_FORMAT_TEXT = 0,
	CFG_LOG_FORMAT_JSON = 1,
};

enum cfg_access_log {
	CFG_ACCESS_OFF = 0,
	CFG_ACCESS_STDOUT = 1,
	CFG_ACCESS_STDERR = 2,
	CFG_ACCESS_FILE = 3,
};

/* Bits of cfg_listener.protocols. */
#define CFG_PROTO_TLS12 0x1u
#define CFG_PROTO_TLS13 0x2u

/* A socket address as written in the file and as parsed. */
struct cfg_addr {
	char *text; /* "127.0.0.1:8443" or "[::1]:8443", as written */
	struct sockaddr_storage ss;
	socklen_t len;
};

struct cfg_certificate {
	char *cert_path; /* absolute */
	char *key_path;  /* absolute */
};

struct cfg_listener {
	char *name;
	struct cfg_addr bind;
	struct cfg_certificate *certs; /* first is the default */
	size_t n_certs;
	unsigned protocols; /* CFG_PROTO_* bits, never zero */
	char **alpn;        /* protocol names, may be empty */
	size_t n_alpn;
	char *pool_name;
	size_t pool; /* index into cfg.pools */
	enum cfg_proxy_protocol proxy_protocol;
};

struct cfg_server {
	char *name; /* stable identity carried in tickets */
	struct cfg_addr address;
	unsigned weight; /* 1..256 */
};

struct cfg_health_check {
	uint64_t interval_ms;
	uint64_t timeout_ms;
	unsigned fall;
	unsigned rise;
};

struct cfg_pool {
	char *name;
	enum cfg_balance balance;
	struct cfg_server *servers;
	size_t n_servers;
	struct cfg_health_check health_check;
};

struct cfg_tickets {
	/* Exactly one of the two key sources is set. */
	char *secret_file;     /* absolute, or NULL */
	unsigned char *secret; /* file contents, wiped by cfg_free() */
	size_t secret_len;
	char **key_files;    /* absolute paths, or NULL */
	unsigned char *keys; /* n_key_files * CFG_TICKET_KEY_LEN, wiped */
	size_t n_key_files;

	uint64_t rotation_interval_s; /* >= 1 */
	uint64_t lifetime_s;          /* >= rotation_interval_s */
	bool affinity;
};

struct cfg_timeouts {
	uint64_t handshake_ms;
	uint64_t idle_ms;
	uint64_t connect_ms;
	uint64_t shutdown_ms;
};

struct cfg_limits {
	uint64_t max_connections;
};

struct cfg_stats {
	bool enabled;
	struct cfg_addr bind;
};

struct cfg_log {
	enum cfg_log_level level;
	enum cfg_access_log access;
	char *access_path; /* with CFG_ACCESS_FILE */
	enum cfg_log_format format;
};

struct cfg_dpdk {
	bool present;
	char **eal_args;
	size_t n_eal_args;
	unsigned port;
	uint32_t address; /* IPv4, network byte order */
	unsigned prefix_len;
	uint32_t gateway; /* network byte order, 0 if none */
};

struct cfg {
	char *path;       /* absolute path of the file it came from */
	unsigned workers; /* resolved: "auto" becomes the online CPU count */
	bool workers_auto;
	enum cfg_engine engine;
	struct cfg_listener *listeners;
	size_t n_listeners;
	struct cfg_pool *pools;
	size_t n_pools;
	struct cfg_tickets tickets;
	struct cfg_timeouts timeouts;
	struct cfg_limits limits;
	struct cfg_stats stats;
	struct cfg_log log;
	struct cfg_dpdk dpdk;
};

/*
 * One problem found in a file. key is the dotted path of the offending key
 * ("listeners[0].bind"), or "" when the problem is with the document.
 * line and col are 1-based, or both 0 when the problem has no position
 * (the file cannot be read at all).
 */
struct cfg_diag {
	unsigned line;
	unsigned col;
	char key[128];
	char message[384];
};

struct cfg_diags {
	char *file;
	struct cfg_diag *items;
	size_t count;
	size_t cap;
	size_t dropped; /* problems past CFG_DIAGS_MAX, counted not kept */
};

/*
 * Load and validate the file at path. On success returns 0 and stores a new
 * snapshot in *out. On failure returns -EINVAL (the file has problems, all of
 * them listed in diags, sorted by position), -ENOMEM, or another -errno if
 * the file cannot be read at all (also recorded in diags). diags may be
 * NULL; otherwise it is cleared first. Never logs. Any thread.
 */
int cfg_load(const char *path, struct cfg **out, struct cfg_diags *diags);

/*
 * The same, for a document held in memory. name is used in diagnostics and
 * base_dir resolves relative paths. Used by the fuzzer and tests.
 */
int cfg_load_buffer(const char *name, const char *base_dir, const char *data, size_t len,
		    struct cfg **out, struct cfg_diags *diags);

/* Free a snapshot, wiping secret and key material first. NULL is a no-op. */
void cfg_free(struct cfg *cfg);

/*
 * Write every diagnostic as "file:line:col: key: message\n" to f
 * (FILE *, declared void * to keep stdio out of this header). The key is
 * left out when it is empty, line:col when the problem has no position.
 */
void cfg_diags_print(const struct cfg_diags *diags, void *f);

/* Release what diags holds; the struct itself may be reused. */
void cfg_diags_clear(struct cfg_diags *diags);

/* Parse "250ms", "10s", "5m", "1h", "2d" into milliseconds. 0 or -EINVAL. */
int cfg_parse_duration(const char *text, uint64_t *ms);

/* Parse "1.2.3.4:443" or "[::1]:443" into a cfg_addr (text not set). */
int cfg_parse_addr(const char *text, struct sockaddr_storage *ss, socklen_t *len);

/* Index of the pool with that name, or -1. */
int cfg_find_pool(const struct cfg *cfg, const char *name);

/* Index of the listener with that name, or -1. */
int cfg_find_listener(const struct cfg *cfg, const char *name);

#ifdef __cplusplus
}
#endif

#endif
