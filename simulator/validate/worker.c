/*
 * oomsim validate worker: one scenario task as a real process.
 *
 * Usage (built and started by simulator/validate/runner.py, never by hand):
 *
 *   worker [--enter CGROUP_PROCS] NAME SOCK_FD PROGRESS_FD MEMLOCK OOM_SCORE_ADJ CAPS
 *
 * --enter writes the worker's pid to CGROUP_PROCS and re-executes the worker, so that the
 * whole image the task runs in (stack, libc data, page tables) is charged to its memcg, as the
 * simulator charges a task's footprint at fork. Then, still privileged: RLIMIT_MEMLOCK (bytes,
 * -1 = unlimited), the initial oom_score_adj (a privileged write, which also sets
 * oom_score_adj_min), the ops read from stdin, and finally every capability not in CAPS (a
 * bit mask) is dropped. The worker says "R" and waits for "G" before its first op.
 *
 * Ops: one a line on stdin, all numbers already in bytes (see runner.py `program_lines`):
 *
 *   memfd_create SLOT FLAGS        open SLOT RDONLY PATH...        ftruncate SLOT SIZE
 *   shmget SLOT SIZE NORESERVE     (a SysV segment; mmap of its slot is shmat)
 *   write SLOT OFF LEN             read SLOT OFF LEN|-1             close SLOT
 *   fallocate SLOT MODE OFF LEN    add_seals SLOT SEALS
 *   mmap SLOT MAP PROT FLAGS OFF LEN|-1                              munmap MAP
 *   touch MAP WRITE PATTERN STRIDE SEED LO HI                        mprotect MAP PROT
 *   mlock MAP LO HI                munlock MAP LO HI                mlock2 MAP LO HI FLAGS
 *   madvise MAP ADVICE LO HI       alloc_anon MAP SIZE TOUCHED
 *   oom_score_adj VALUE            sleep NANOSECONDS                exit
 *   memory_reclaim BYTES SWAPPINESS|-1 PATH...   (a write to a cgroup v2 memory.reclaim file)
 *
 * LO/HI are a range end: "-" (the whole map), bytes, or "p" and a percentage of the map.
 *
 * Progress goes to the parent two ways. Messages on the SOCK_SEQPACKET socket: "O i" (op i
 * starts), "T i ns" (op i took ns), "E i errno" (op i failed; the worker exits), "F slot" with
 * the fd attached (an fd this task created), "N slot" (asks for an fd another task created;
 * the parent answers "F slot" with it, "S slot shmid", or "X slot"), "S slot shmid" (a SysV
 * segment this task created), "D" (all ops done). The shared progress
 * page (PROGRESS_FD) holds the same facts without allocating anything: the op, the page index
 * (stored before each page is touched: a message per page would cost a syscall per page), the
 * errno, done, and the SysV segments created (to remove them). The parent reads it when the task has ended, however it ended; it is the
 * record that counts, since a message from a memcg at its limit can fail to be allocated.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#ifndef SYS_mlock2
#define SYS_mlock2 __NR_mlock2
#endif
#ifndef SHM_NORESERVE
#define SHM_NORESERVE 010000
#endif

#define MAX_OPS 4096
#define MAX_SLOTS 256
#define MAX_SHM 32
#define FD_NONE (-1)   /* never had it: ask the parent */
#define FD_CLOSED (-2) /* closed by this task: EBADF */

struct progress {
	volatile int64_t op;   /* the op running (-1: none yet) */
	volatile int64_t page; /* the page it is at (-1: none) */
	volatile int64_t err;  /* the errno op `op` returned (0: none) */
	volatile int64_t done; /* 1 once every op has run */
	volatile int64_t nshm; /* SysV segments this task created (the parent removes them) */
	volatile int64_t shmids[MAX_SHM];
};

struct range_end {
	int kind; /* 0 none, 1 bytes, 2 percent */
	double value;
};

struct op {
	char name[16];
	long long a[8];
	struct range_end lo, hi;
	char *path;
};

struct map {
	char *addr;
	size_t len;
	int shm; /* attached with shmat: detached with shmdt */
};

static struct op ops[MAX_OPS];
static int nops;
static int fds[MAX_SLOTS];
static int shm_ids[MAX_SLOTS]; /* a slot may name a SysV segment (shmget) instead of an fd */
static struct map maps[MAX_SLOTS];
static int sock;
static struct progress *prog;
static long page_size;
static char iobuf[64 * 1024]; /* .bss: read(2) fills it, write(2) reads zero pages from it */

static void die(const char *what)
{
	fprintf(stderr, "oomsim worker: %s: %s\n", what, strerror(errno));
	_exit(100);
}

/*
 * A message to the parent. In a memcg at its limit the kernel may fail to allocate the message
 * (ENOMEM, ENOBUFS): it is lost, and the progress page still says where the task is.
 */
static void say(const char *fmt, long long x, long long y)
{
	char buf[64];
	int n = snprintf(buf, sizeof(buf), fmt, x, y);
	if (send(sock, buf, n, MSG_NOSIGNAL) < 0 && (errno == EPIPE || errno == ECONNRESET))
		_exit(101); /* the parent is gone: stop at once */
}

static void send_fd(int slot, int fd)
{
	char buf[32], cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {buf, (size_t)snprintf(buf, sizeof(buf), "F %d", slot)};
	struct msghdr msg = {0};
	struct cmsghdr *c;

	memset(cbuf, 0, sizeof(cbuf));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf;
	msg.msg_controllen = sizeof(cbuf);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	if (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0) {
		fprintf(stderr, "oomsim worker: passing fd slot %d: %s\n", slot, strerror(errno));
		_exit(101);
	}
}

/* Receive one message; an attached fd goes to *fd (else -1). */
static int recv_msg(char *buf, size_t size, int *fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {buf, size - 1};
	struct msghdr msg = {0};
	struct cmsghdr *c;
	ssize_t n;

	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf;
	msg.msg_controllen = sizeof(cbuf);
	do {
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n <= 0)
		_exit(101);
	buf[n] = 0;
	*fd = -1;
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(fd, CMSG_DATA(c), sizeof(int));
	return (int)n;
}

/* A new fd this task created for a slot: replaces any old one and goes to the parent. */
static void install_fd(int slot, int fd)
{
	if (fds[slot] >= 0)
		close(fds[slot]);
	fds[slot] = fd;
	send_fd(slot, fd);
}

/*
 * The task's fd for a slot: its own, or the one another task created (asked of the parent,
 * which answers "F slot" with the fd, "S slot shmid" for a SysV segment, or "X slot"). -1 (the
 * syscall then returns EBADF) when nobody created it, or when the slot is a SysV segment.
 */
static int get_fd(int slot)
{
	char buf[64];
	int fd;

	if (fds[slot] != FD_NONE || shm_ids[slot] >= 0)
		return fds[slot] >= 0 ? fds[slot] : -1;
	say("N %lld", slot, 0);
	recv_msg(buf, sizeof(buf), &fd);
	if (buf[0] == 'F' && fd >= 0)
		fds[slot] = fd;
	if (buf[0] == 'S')
		shm_ids[slot] = atoi(strchr(buf + 2, ' ') + 1);
	return fds[slot] >= 0 ? fds[slot] : -1;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static size_t range_bytes(struct range_end r, size_t whole, size_t dflt)
{
	if (r.kind == 1)
		return (size_t)r.value;
	if (r.kind == 2)
		return (size_t)(r.value * (double)whole / 100.0);
	return dflt;
}

/* Map-relative pages [lo, hi) of an op's range, as the simulator computes them. */
static void page_range(struct op *o, struct map *m, size_t *lo, size_t *hi)
{
	size_t npages = (m->len + page_size - 1) / page_size, whole = npages * page_size;
	*lo = range_bytes(o->lo, whole, 0) / page_size;
	*hi = (range_bytes(o->hi, whole, whole) + page_size - 1) / page_size;
}

static void parse_range_end(const char *s, struct range_end *r)
{
	if (!s || s[0] == '-')
		r->kind = 0;
	else if (s[0] == 'p')
		r->kind = 2, r->value = atof(s + 1);
	else
		r->kind = 1, r->value = (double)atoll(s);
}

static void read_ops(void)
{
	static char line[8192];
	while (fgets(line, sizeof(line), stdin)) {
		struct op *o = &ops[nops];
		char *save, *tok;
		int i = 0;

		line[strcspn(line, "\n")] = 0;
		if (!line[0])
			continue;
		if (nops == MAX_OPS) {
			fprintf(stderr, "oomsim worker: more than %d ops\n", MAX_OPS);
			_exit(100);
		}
		tok = strtok_r(line, " ", &save);
		snprintf(o->name, sizeof(o->name), "%s", tok);
		if (!strcmp(o->name, "memory_reclaim")) {
			o->a[0] = atoll(strtok_r(NULL, " ", &save));
			o->a[1] = atoll(strtok_r(NULL, " ", &save));
			o->path = strdup(save); /* the rest of the line */
		} else if (!strcmp(o->name, "open")) {
			o->a[0] = atoll(strtok_r(NULL, " ", &save));
			o->a[1] = atoll(strtok_r(NULL, " ", &save));
			o->path = strdup(save); /* the rest of the line */
		} else if (!strcmp(o->name, "touch") || !strcmp(o->name, "mlock") ||
			   !strcmp(o->name, "munlock") || !strcmp(o->name, "mlock2") ||
			   !strcmp(o->name, "madvise")) {
			/* numbers, then LO HI, then (mlock2) FLAGS */
			int nnum = !strcmp(o->name, "touch") ? 5 : !strcmp(o->name, "madvise") ? 2 : 1;
			for (i = 0; i < nnum; i++)
				o->a[i] = atoll(strtok_r(NULL, " ", &save));
			parse_range_end(strtok_r(NULL, " ", &save), &o->lo);
			parse_range_end(strtok_r(NULL, " ", &save), &o->hi);
			tok = strtok_r(NULL, " ", &save);
			o->a[nnum] = tok ? atoll(tok) : 0;
		} else {
			while ((tok = strtok_r(NULL, " ", &save)) && i < 8)
				o->a[i++] = atoll(tok);
		}
		nops++;
	}
}

static int op_touch(struct op *o)
{
	struct map *m = &maps[o->a[0]];
	int write = (int)o->a[1], pattern = (int)o->a[2];
	size_t lo, hi, n, i, k, step, mult;

	if (!m->addr)
		return EINVAL;
	page_range(o, m, &lo, &hi);
	n = hi > lo ? hi - lo : 0;
	step = (size_t)o->a[3] / page_size;
	if (step == 0)
		step = 1;
	/* random: i -> (mult * i + seed) mod n is a permutation when gcd(mult, n) = 1 */
	mult = n > 1 ? 2654435761UL % n : 1;
	while (pattern == 1 && n > 1) {
		size_t a = mult ? mult : 1, b = n, t;
		while (b)
			t = a % b, a = b, b = t;
		if (a == 1 && mult)
			break;
		mult = (mult + 1) % n;
	}
	for (k = 0; k < n; k += (pattern == 2 ? step : 1)) {
		i = lo + (pattern == 1 ? (mult * k + (size_t)o->a[4]) % n : k);
		prog->page = (int64_t)i;
		if (write)
			((volatile char *)m->addr)[i * page_size] = 1;
		else
			(void)((volatile char *)m->addr)[i * page_size];
	}
	return 0;
}

static int op_read(struct op *o)
{
	int fd = get_fd((int)o->a[0]);
	off_t off = o->a[1], end = o->a[2] < 0 ? -1 : o->a[1] + o->a[2];

	for (;;) {
		size_t want = sizeof(iobuf);
		ssize_t n;
		if (end >= 0 && (off_t)want > end - off)
			want = end - off;
		if (want == 0)
			return 0;
		n = pread(fd, iobuf, want, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		if (n == 0)
			return 0; /* end of file */
		off += n;
		prog->page = off / page_size; /* pages done (file pages) */
	}
}

static int op_write(struct op *o)
{
	int fd = get_fd((int)o->a[0]);
	off_t off = o->a[1], end = o->a[1] + o->a[2];

	while (off < end) {
		size_t want = end - off < (off_t)sizeof(iobuf) ? (size_t)(end - off) : sizeof(iobuf);
		ssize_t n;
		n = pwrite(fd, iobuf, want, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		off += n;
		prog->page = off / page_size; /* pages done (file pages) */
	}
	return 0;
}

/* mmap of a SysV segment: shmat (shared, whole segment); MAP_POPULATE as MADV_POPULATE_*. */
static int op_shmat(struct op *o, int id)
{
	struct map *m = &maps[o->a[1]];
	int prot = (int)o->a[2], flags = (int)o->a[3];
	struct shmid_ds ds;
	void *p;

	if (!(flags & MAP_SHARED) || (flags & MAP_LOCKED) || o->a[4] != 0)
		return EINVAL; /* shmat maps the whole segment, shared, from its start */
	if (shmctl(id, IPC_STAT, &ds) < 0)
		return errno;
	p = shmat(id, NULL, (prot & PROT_WRITE) ? 0 : SHM_RDONLY);
	if (p == (void *)-1)
		return errno;
	m->addr = p;
	m->len = o->a[5] >= 0 && (size_t)o->a[5] < ds.shm_segsz ? (size_t)o->a[5] : ds.shm_segsz;
	m->shm = 1;
	if (flags & MAP_POPULATE) /* errors ignored, as mm_populate's are */
		madvise(p, m->len, (prot & PROT_WRITE) ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
	return 0;
}

static int op_mmap(struct op *o)
{
	int fd = get_fd((int)o->a[0]);
	struct map *m = &maps[o->a[1]];
	off_t off = o->a[4];
	long long len = o->a[5];
	struct stat st;
	void *p;

	if (shm_ids[o->a[0]] >= 0)
		return op_shmat(o, shm_ids[o->a[0]]);

	if (len < 0) {
		if (fstat(fd, &st) < 0)
			return errno;
		len = st.st_size > off ? st.st_size - off : 0;
	}
	p = mmap(NULL, (size_t)len, (int)o->a[2], (int)o->a[3], fd, off);
	if (p == MAP_FAILED)
		return errno;
	m->addr = p;
	m->len = (size_t)len;
	m->shm = 0;
	return 0;
}

static int op_shmget(struct op *o)
{
	int slot = (int)o->a[0];
	int id = shmget(IPC_PRIVATE, (size_t)o->a[1], IPC_CREAT | 0600 | (o->a[2] ? SHM_NORESERVE : 0));

	if (id < 0)
		return errno;
	if (prog->nshm < MAX_SHM)
		prog->shmids[prog->nshm++] = id;
	if (fds[slot] >= 0)
		close(fds[slot]);
	fds[slot] = FD_NONE;
	shm_ids[slot] = id;
	say("S %lld %lld", slot, id);
	return 0;
}

static int op_alloc_anon(struct op *o)
{
	struct map *m = &maps[o->a[0]];
	size_t len = (size_t)o->a[1], i;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return errno;
	m->addr = p;
	m->len = len;
	m->shm = 0;
	for (i = 0; o->a[2] && i * page_size < len; i++) {
		prog->page = (int64_t)i;
		((volatile char *)p)[i * page_size] = 1;
	}
	return 0;
}

/* One write(2) of `n` bytes of `buf` to the file at `path`: 0 or the errno. */
static int write_file(const char *path, const char *buf, int n)
{
	int fd, err = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	if (write(fd, buf, n) < 0)
		err = errno;
	close(fd);
	return err;
}

static int op_oom_score_adj(long long value)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%lld", value);

	return write_file("/proc/self/oom_score_adj", buf, n);
}

/* user_proactive_reclaim: "BYTES" or "BYTES swappiness=N" written to memory.reclaim; the
 * write fails with EAGAIN when reclaim falls short. */
static int op_memory_reclaim(struct op *o)
{
	char buf[64];
	int n;

	if (o->a[1] >= 0)
		n = snprintf(buf, sizeof(buf), "%lld swappiness=%lld", o->a[0], o->a[1]);
	else
		n = snprintf(buf, sizeof(buf), "%lld", o->a[0]);
	return write_file(o->path, buf, n);
}

static int op_sleep(long long ns)
{
	struct timespec ts = {ns / 1000000000LL, ns % 1000000000LL};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	return 0;
}

static int map_op(struct op *o, struct map **m, size_t *lo, size_t *hi)
{
	*m = &maps[o->a[0]];
	if (!(*m)->addr)
		return EINVAL;
	page_range(o, *m, lo, hi);
	return 0;
}

/* Run one op: 0, or the errno it returned. */
static int run_op(struct op *o)
{
	const char *n = o->name;
	struct map *m;
	size_t lo, hi;
	int fd, r = 0;

	if (!strcmp(n, "memfd_create")) {
		fd = memfd_create("oomsim", (unsigned)o->a[1] | MFD_CLOEXEC);
		if (fd < 0)
			return errno;
		install_fd((int)o->a[0], fd);
		return 0;
	}
	if (!strcmp(n, "open")) {
		fd = open(o->path, O_CREAT | O_CLOEXEC | (o->a[1] ? O_RDONLY : O_RDWR), 0600);
		if (fd < 0)
			return errno;
		install_fd((int)o->a[0], fd);
		return 0;
	}
	if (!strcmp(n, "close")) {
		r = close(get_fd((int)o->a[0])) < 0 ? errno : 0;
		fds[o->a[0]] = FD_CLOSED;
		return r;
	}
	if (!strcmp(n, "shmget"))
		return op_shmget(o);
	if (!strcmp(n, "ftruncate"))
		return ftruncate(get_fd((int)o->a[0]), o->a[1]) < 0 ? errno : 0;
	if (!strcmp(n, "write"))
		return op_write(o);
	if (!strcmp(n, "read"))
		return op_read(o);
	if (!strcmp(n, "fallocate"))
		return fallocate(get_fd((int)o->a[0]), (int)o->a[1], o->a[2], o->a[3]) < 0 ? errno : 0;
	if (!strcmp(n, "add_seals"))
		return fcntl(get_fd((int)o->a[0]), F_ADD_SEALS, (int)o->a[1]) < 0 ? errno : 0;
	if (!strcmp(n, "mmap"))
		return op_mmap(o);
	if (!strcmp(n, "munmap")) {
		m = &maps[o->a[0]];
		if (!m->addr)
			return EINVAL;
		r = (m->shm ? shmdt(m->addr) : munmap(m->addr, m->len)) < 0 ? errno : 0;
		m->addr = NULL;
		return r;
	}
	if (!strcmp(n, "touch"))
		return op_touch(o);
	if (!strcmp(n, "mprotect")) {
		m = &maps[o->a[0]];
		if (!m->addr)
			return EINVAL;
		return mprotect(m->addr, m->len, (int)o->a[1]) < 0 ? errno : 0;
	}
	if (!strcmp(n, "mlock") || !strcmp(n, "munlock") || !strcmp(n, "mlock2") ||
	    !strcmp(n, "madvise")) {
		if ((r = map_op(o, &m, &lo, &hi)))
			return r;
		if (!strcmp(n, "mlock"))
			r = mlock(m->addr + lo * page_size, (hi - lo) * page_size);
		else if (!strcmp(n, "munlock"))
			r = munlock(m->addr + lo * page_size, (hi - lo) * page_size);
		else if (!strcmp(n, "mlock2"))
			r = (int)syscall(SYS_mlock2, m->addr + lo * page_size, (hi - lo) * page_size,
					 (unsigned)o->a[1]);
		else
			r = madvise(m->addr + lo * page_size, (hi - lo) * page_size, (int)o->a[1]);
		return r < 0 ? errno : 0;
	}
	if (!strcmp(n, "alloc_anon"))
		return op_alloc_anon(o);
	if (!strcmp(n, "oom_score_adj"))
		return op_oom_score_adj(o->a[0]);
	if (!strcmp(n, "sleep"))
		return op_sleep(o->a[0]);
	if (!strcmp(n, "memory_reclaim"))
		return op_memory_reclaim(o);
	fprintf(stderr, "oomsim worker: unknown op %s\n", n);
	_exit(100);
}

static void drop_capabilities(unsigned long long keep)
{
	struct {
		uint32_t version;
		int pid;
	} hdr = {0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, 0};
	struct {
		uint32_t effective, permitted, inheritable;
	} data[2];
	int i;

	if (syscall(SYS_capget, &hdr, data) < 0)
		die("capget");
	for (i = 0; i < 2; i++) {
		uint32_t k = (uint32_t)(keep >> (32 * i));
		data[i].effective &= k;
		data[i].permitted &= k;
		data[i].inheritable &= k;
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		die("capset");
}

int main(int argc, char **argv)
{
	struct rlimit rl;
	long long memlock;
	char buf[64];
	int i, fd;

	if (argc > 2 && !strcmp(argv[1], "--enter")) {
		/* Join the task's memcg, then start over so the new image is charged there. */
		fd = open(argv[2], O_WRONLY | O_CLOEXEC);
		i = snprintf(buf, sizeof(buf), "%d", getpid());
		if (fd < 0 || write(fd, buf, i) < 0)
			die("entering the cgroup");
		close(fd);
		argv[2] = argv[0];
		execv("/proc/self/exe", argv + 2);
		die("re-exec");
	}
	if (argc != 7) {
		fprintf(stderr, "usage: %s [--enter PROCS] NAME SOCK PROGRESS MEMLOCK OOM_ADJ CAPS\n",
			argv[0]);
		return 100;
	}
	prctl(PR_SET_NAME, argv[1]);
	signal(SIGPIPE, SIG_IGN);
	sock = atoi(argv[2]);
	page_size = sysconf(_SC_PAGESIZE);
	for (i = 0; i < MAX_SLOTS; i++)
		fds[i] = FD_NONE, shm_ids[i] = -1;

	memlock = atoll(argv[4]);
	rl.rlim_cur = rl.rlim_max = memlock < 0 ? RLIM_INFINITY : (rlim_t)memlock;
	if (setrlimit(RLIMIT_MEMLOCK, &rl) < 0)
		die("setrlimit(RLIMIT_MEMLOCK)");
	if (op_oom_score_adj(atoll(argv[5])))
		die("setting oom_score_adj");
	read_ops();
	prog = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_SHARED, atoi(argv[3]), 0);
	if (prog == MAP_FAILED)
		die("mapping the progress page");
	close(atoi(argv[3]));
	prog->op = -1;
	prog->page = -1;
	prog->err = 0;
	prog->done = 0;
	prog->nshm = 0;
	drop_capabilities(strtoull(argv[6], NULL, 0));

	say("R", 0, 0);
	recv_msg(buf, sizeof(buf), &fd);
	if (buf[0] != 'G')
		_exit(102);
	for (i = 0; i < nops; i++) {
		int64_t t0;
		int err;

		prog->op = i;
		prog->page = -1;
		say("O %lld", i, 0);
		if (!strcmp(ops[i].name, "exit"))
			break;
		t0 = now_ns();
		err = run_op(&ops[i]);
		if (err) {
			prog->err = err;
			say("E %lld %lld", i, err);
			_exit(0);
		}
		say("T %lld %lld", i, now_ns() - t0);
	}
	prog->done = 1;
	say("D", 0, 0);
	_exit(0);
}
