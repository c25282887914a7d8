/*
 * tests/unit/unix_sock: a listening Unix socket at a per-test path and a
 * client connection to it, for the message layer's tests.  Include after
 * cmocka.h (the helpers assert).
 */
#ifndef SWB_TEST_UNIX_SOCK_H
#define SWB_TEST_UNIX_SOCK_H

#include <stdio.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

/* A non-blocking listener at /tmp/swb-test-TAG.PID; its path in path. */
static inline int
test_listener(const char *tag, char *path, size_t len)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

	snprintf(path, len, "/tmp/swb-test-%s.%d", tag, (int)getpid());
	unlink(path);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(fd, 16), 0);
	return fd;
}

/* A blocking client of the listener at path. */
static inline int
test_dial(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

#endif
