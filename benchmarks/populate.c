/* The real kernel's rate for MADV_POPULATE_READ over the holes of a sealed memfd.
 *
 * Usage: populate SIZE_BYTES. Waits for one byte on stdin first (so that the parent can move
 * it into a memory cgroup before it allocates anything), then creates a memfd of SIZE_BYTES,
 * seals it (write, shrink, grow), maps it shared read-only, times MADV_POPULATE_READ over the
 * whole map, and prints "ret errno seconds".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

int main(int argc, char **argv)
{
	struct timespec t0, t1;
	char go;
	if (argc != 2)
		return 2;
	size_t size = strtoull(argv[1], NULL, 10);
	if (read(0, &go, 1) != 1)
		return 2;
	int fd = memfd_create("oomsim-bench", MFD_ALLOW_SEALING);
	if (fd < 0 || ftruncate(fd, size) < 0)
		return 3;
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW) < 0)
		return 4;
	void *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return 5;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int ret = madvise(p, size, MADV_POPULATE_READ);
	int err = ret ? errno : 0;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%d %d %.9f\n", ret, err,
	       (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
