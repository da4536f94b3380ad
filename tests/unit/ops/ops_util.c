#include "ops_util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int
ops_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

int
ops_connect(unsigned port)
{
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&in, sizeof(in)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int
ops_send_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
ops_readable(int fd, int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	return poll(&pfd, 1, timeout_ms) == 1;
}

size_t
ops_read_all(int fd, char *buf, size_t cap, int timeout_ms, int *err)
{
	size_t len = 0;

	*err = 0;
	while (len + 1 < cap) {
		ssize_t n;

		if (!ops_readable(fd, timeout_ms)) {
			*err = ETIMEDOUT;
			break;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			*err = errno;
		if (n <= 0)
			break;
		len += (size_t)n;
	}

	buf[len] = '\0';
	return len;
}

ssize_t
ops_read_line(int fd, char *buf, size_t cap, int timeout_ms)
{
	size_t len = 0;

	while (len + 1 < cap) {
		char c;
		ssize_t n;

		if (!ops_readable(fd, timeout_ms))
			return -1;
		n = read(fd, &c, 1);
		if (n <= 0)
			return -1;
		if (c == '\n') {
			buf[len] = '\0';
			return (ssize_t)len;
		}
		buf[len++] = c;
	}
	return -1;
}
