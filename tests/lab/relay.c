/*
 * relay — the lab's delayed link, for kernels built without netem
 * (CONFIG_NET_SCH_NETEM unset and no loadable modules, as on the machine
 * this lab was written on).  tests/lab/lab builds it and runs
 *
 *     relay NETNS_A IFNAME_A NETNS_B IFNAME_B DELAY_US
 *
 * It creates a TUN device in each of the two network namespaces (paths such
 * as /run/netns/sw-mh-a) and copies every IP packet read from one to the
 * other DELAY_US microseconds later, in order: with a route through each
 * TUN device, every packet between the two namespaces takes DELAY_US longer
 * in each direction, as netem's "delay" on both ends of a link would do.
 * The devices are not persistent: when the relay exits they vanish with
 * their routes and traffic takes the direct link again.  On SIGTERM or
 * SIGINT it first sends what it holds, so that ending a delay loses
 * nothing.  Like netem's default limit it holds a bounded number of
 * packets per direction and drops the rest.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

enum { MAX_HELD = 10000, MAX_PACKET = 65536 };

struct packet {
	struct packet *next;
	long long due; /* µs, CLOCK_MONOTONIC */
	size_t len;
	unsigned char data[];
};

struct lane { /* one direction: packets read from `in`, written to `out` */
	int in, out;
	struct packet *head, *tail;
	int held;
};

static volatile sig_atomic_t stopping;

static void on_signal(int sig) { (void)sig; stopping = 1; }

static void die(const char *what, const char *arg)
{
	fprintf(stderr, "relay: unable to %s %s: %s\n", what, arg, strerror(errno));
	exit(71);
}

static long long now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* A TUN device belongs to the namespace of the process that opens
 * /dev/net/tun, so enter the namespace first; the descriptor keeps it. */
static int tun_in(const char *netns, const char *ifname)
{
	struct ifreq ifr;
	int ns = open(netns, O_RDONLY | O_CLOEXEC), fd;
	if (ns < 0 || setns(ns, CLONE_NEWNET) < 0)
		die("enter network namespace", netns);
	close(ns);
	if ((fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK)) < 0)
		die("open", "/dev/net/tun");
	memset(&ifr, 0, sizeof ifr);
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	if (strlen(ifname) >= sizeof ifr.ifr_name) {
		fprintf(stderr, "relay: interface name %s is too long\n", ifname);
		exit(64);
	}
	strcpy(ifr.ifr_name, ifname);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0)
		die("create TUN device", ifname);
	return fd;
}

static void take_in(struct lane *l, long long delay)
{
	static unsigned char buf[MAX_PACKET];
	ssize_t n;
	while ((n = read(l->in, buf, sizeof buf)) > 0) {
		struct packet *p;
		if (l->held >= MAX_HELD || !(p = malloc(sizeof *p + (size_t)n)))
			continue; /* dropped, as by a full netem queue */
		p->next = NULL;
		p->due = now_us() + delay;
		p->len = (size_t)n;
		memcpy(p->data, buf, (size_t)n);
		if (l->tail)
			l->tail->next = p;
		else
			l->head = p;
		l->tail = p;
		l->held++;
	}
}

/* Sends what is due by `until`; returns when the next packet is due, or -1. */
static long long send_due(struct lane *l, long long until)
{
	struct packet *p;
	while ((p = l->head) && p->due <= until) {
		/* A TUN write is a receive on the other side; one it refuses
		 * is a lost packet, which TCP mends. */
		if (write(l->out, p->data, p->len) < 0 && errno == EINTR)
			continue;
		l->head = p->next;
		if (!l->head)
			l->tail = NULL;
		l->held--;
		free(p);
	}
	return l->head ? l->head->due : -1;
}

int main(int argc, char **argv)
{
	struct lane lane[2];
	struct sigaction sa;
	sigset_t block, waiting;
	long long delay;
	char *end;
	int a, b;

	if (argc != 6) {
		fputs("usage: relay NETNS_A IFNAME_A NETNS_B IFNAME_B DELAY_US\n", stderr);
		return 64;
	}
	delay = strtoll(argv[5], &end, 10);
	if (*argv[5] == '\0' || *end != '\0' || delay < 0) {
		fprintf(stderr, "relay: %s is not a delay in microseconds\n", argv[5]);
		return 64;
	}
	a = tun_in(argv[1], argv[2]);
	b = tun_in(argv[3], argv[4]);
	lane[0] = (struct lane){.in = a, .out = b};
	lane[1] = (struct lane){.in = b, .out = a};

	/* The signals are blocked except inside ppoll, so that one arriving
	 * just before it cannot leave the relay waiting for a packet. */
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &waiting);

	while (!stopping) {
		struct pollfd pfd[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};
		long long t = now_us(), next = -1;
		struct timespec timeout, *until_due = NULL;
		for (int i = 0; i < 2; i++) {
			long long due = send_due(&lane[i], t);
			if (due >= 0 && (next < 0 || due < next))
				next = due;
		}
		if (next >= 0) {
			timeout.tv_sec = (next - t) / 1000000;
			timeout.tv_nsec = (next - t) % 1000000 * 1000;
			until_due = &timeout;
		}
		if (ppoll(pfd, 2, until_due, &waiting) < 0 && errno != EINTR)
			die("poll", "the TUN devices");
		for (int i = 0; i < 2; i++)
			if (pfd[i].revents & POLLIN)
				take_in(&lane[i], delay);
	}
	send_due(&lane[0], LLONG_MAX);
	send_due(&lane[1], LLONG_MAX);
	return 0;
}
