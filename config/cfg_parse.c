/*
 * Scalar syntax: durations, integers, booleans, addresses and names.
 *
 * Each cfg_syntax_*() returns NULL when the text is fine, or a phrase that
 * completes "'TEXT' ..." in a diagnostic, so every caller words a problem
 * the same way. None of them allocates.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_internal.h"

#define DURATION_UNITS "ms, s, m, h or d"

struct duration_unit {
	const char *suffix;
	uint64_t ms;
};

static const struct duration_unit duration_units[] = {
	{"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000}, {"d", 24 * 60 * 60 * 1000},
};

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Leading decimal digits of text into *value; the rest in *end. */
static const char *
read_digits(const char *text, uint64_t *value, const char **end)
{
	uint64_t v = 0;

	for (; is_digit(*text); text++) {
		unsigned d = (unsigned)(*text - '0');

		if (v > (UINT64_MAX - d) / 10)
			return "is too large";
		v = v * 10 + d;
	}

	*value = v;
	*end = text;
	return NULL;
}

static const char *
find_unit(const char *suffix, uint64_t *scale)
{
	for (size_t i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++) {
		if (strcmp(suffix, duration_units[i].suffix) == 0) {
			*scale = duration_units[i].ms;
			return NULL;
		}
	}

	return "has an unknown unit (expected " DURATION_UNITS ")";
}

const char *
cfg_syntax_duration(const char *text, uint64_t *ms)
{
	const char *why, *end;
	uint64_t n, scale;

	if (*text == '-')
		return "is negative; a duration is a whole number and a unit, as in 10s";
	if (!is_digit(*text))
		return "is not a duration (expected a whole number and a unit: " DURATION_UNITS ")";

	why = read_digits(text, &n, &end);
	if (why != NULL)
		return why;
	if (*end == '.' || *end == ',')
		return "is not a whole number (write 1500ms, not 1.5s)";
	if (*end == '\0')
		return "has no unit (expected " DURATION_UNITS ", as in 10s)";

	why = find_unit(end, &scale);
	if (why != NULL)
		return why;
	if (n > UINT64_MAX / scale)
		return "is too large";

	*ms = n * scale;
	return NULL;
}

const char *
cfg_syntax_uint(const char *text, uint64_t *value)
{
	const char *why, *end;

	if (*text == '-')
		return "is negative";
	if (!is_digit(*text))
		return "is not a whole number";

	why = read_digits(text, value, &end);
	if (why != NULL)
		return why;

	return *end == '\0' ? NULL : "is not a whole number";
}

const char *
cfg_syntax_bool(const char *text, bool *value)
{
	static const char *const yes[] = {"true", "yes", "on"};
	static const char *const no[] = {"false", "no", "off"};

	for (size_t i = 0; i < 3; i++) {
		if (strcmp(text, yes[i]) == 0) {
			*value = true;
			return NULL;
		}
		if (strcmp(text, no[i]) == 0) {
			*value = false;
			return NULL;
		}
	}

	return "is not a boolean (expected true or false)";
}

static const char *
parse_port(const char *text, in_port_t *port)
{
	uint64_t v;

	if (*text == '\0')
		return "has no port (expected HOST:PORT or [IPv6]:PORT)";
	if (cfg_syntax_uint(text, &v) != NULL)
		return "has no valid port (expected HOST:PORT or [IPv6]:PORT)";
	if (v < 1 || v > 65535)
		return "has a port out of range (1..65535)";

	*port = htons((in_port_t)v);
	return NULL;
}

static const char *
parse_addr6(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	const char *close = strchr(text, ']');
	char host[INET6_ADDRSTRLEN];
	size_t hlen;

	if (close == NULL)
		return "has an unclosed '[' (expected [IPv6]:PORT)";

	hlen = (size_t)(close - text - 1);
	if (hlen >= sizeof(host))
		return "is not a valid IPv6 address";
	memcpy(host, text + 1, hlen);
	host[hlen] = '\0';

	memset(ss, 0, sizeof(*ss));
	sin6->sin6_family = AF_INET6;
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
		return "is not a valid IPv6 address (expected [IPv6]:PORT)";
	if (close[1] != ':')
		return close[1] == '\0' ? "has no port (expected HOST:PORT or [IPv6]:PORT)"
					: "has text after ']' (expected [IPv6]:PORT)";

	*len = sizeof(*sin6);
	return parse_port(close + 2, &sin6->sin6_port);
}

static const char *
parse_addr4(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	const char *colon = strchr(text, ':');
	char host[INET_ADDRSTRLEN];
	size_t hlen;

	if (colon == NULL)
		return "has no port (expected HOST:PORT or [IPv6]:PORT)";
	if (strchr(colon + 1, ':') != NULL)
		return "looks like an IPv6 address; put it in brackets, as in [::1]:8443";

	hlen = (size_t)(colon - text);
	if (hlen >= sizeof(host))
		return "is not an IPv4 address and port (host names are not resolved)";
	memcpy(host, text, hlen);
	host[hlen] = '\0';

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return "is not an IPv4 address and port (host names are not resolved)";

	*len = sizeof(*sin);
	return parse_port(colon + 1, &sin->sin_port);
}

const char *
cfg_syntax_addr(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
	if (*text == '\0')
		return "is empty (expected HOST:PORT or [IPv6]:PORT)";

	return text[0] == '[' ? parse_addr6(text, ss, len) : parse_addr4(text, ss, len);
}

const char *
cfg_syntax_ipv4(const char *text, uint32_t *addr)
{
	struct in_addr in;

	if (inet_pton(AF_INET, text, &in) != 1)
		return "is not an IPv4 address (expected A.B.C.D)";

	*addr = in.s_addr;
	return NULL;
}

const char *
cfg_syntax_ipv4_prefix(const char *text, uint32_t *addr, unsigned *prefix_len)
{
	const char *slash = strchr(text, '/');
	char host[INET_ADDRSTRLEN];
	uint64_t prefix;

	if (slash == NULL)
		return "has no prefix length (expected A.B.C.D/PREFIX, as in 10.0.0.2/24)";
	if ((size_t)(slash - text) >= sizeof(host))
		return "is not an IPv4 address with a prefix (expected A.B.C.D/PREFIX)";

	memcpy(host, text, (size_t)(slash - text));
	host[slash - text] = '\0';
	if (cfg_syntax_ipv4(host, addr) != NULL)
		return "is not an IPv4 address with a prefix (expected A.B.C.D/PREFIX)";
	if (*addr == 0)
		return "is not a usable interface address";
	if (cfg_syntax_uint(slash + 1, &prefix) != NULL || prefix < 1 || prefix > 32)
		return "has a prefix length out of range (1..32)";

	*prefix_len = (unsigned)prefix;
	return NULL;
}

static bool
is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '.' ||
	       c == '_' || c == '-';
}

const char *
cfg_syntax_name(const char *text)
{
	size_t len = strlen(text);

	if (len == 0 || len > CFG_NAME_MAX)
		return "is not a valid name (use 1 to 63 letters, digits, '.', '_' or '-')";

	for (size_t i = 0; i < len; i++) {
		if (!is_name_char(text[i]))
			return "is not a valid name (use 1 to 63 letters, digits, '.', '_' or '-')";
	}

	return NULL;
}

void
cfg_format_duration(uint64_t ms, char *buf, size_t cap)
{
	/* The largest unit that divides evenly, so 90000ms reads as 90s. */
	for (size_t i = sizeof(duration_units) / sizeof(duration_units[0]); i-- > 0;) {
		const struct duration_unit *u = &duration_units[i];

		if (ms != 0 && ms % u->ms == 0) {
			snprintf(buf, cap, "%llu%s", (unsigned long long)(ms / u->ms), u->suffix);
			return;
		}
	}

	snprintf(buf, cap, "%llums", (unsigned long long)ms);
}

char *
cfg_resolve_path(const char *base_dir, const char *path)
{
	size_t blen, plen;
	char *out;

	if (path[0] == '/')
		return strdup(path);

	blen = strlen(base_dir);
	plen = strlen(path);
	out = malloc(blen + 1 + plen + 1);
	if (out == NULL)
		return NULL;

	memcpy(out, base_dir, blen);
	if (blen == 0 || base_dir[blen - 1] != '/')
		out[blen++] = '/';
	memcpy(out + blen, path, plen + 1);
	return out;
}

int
cfg_parse_duration(const char *text, uint64_t *ms)
{
	if (text == NULL || ms == NULL)
		return -EINVAL;

	return cfg_syntax_duration(text, ms) == NULL ? 0 : -EINVAL;
}

int
cfg_parse_addr(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
	if (text == NULL || ss == NULL || len == NULL)
		return -EINVAL;

	return cfg_syntax_addr(text, ss, len) == NULL ? 0 : -EINVAL;
}
