/*
 * TCP request/response of 1-byte messages (netperf TCP_RR-like), for the cross-node benchmark.
 *   rr server <port>             answers every byte with one byte, one connection, then exits
 *   rr client <ip> <port> <n>    n round trips after 200 warm-up ones; prints
 *                                `{"n":..,"p50_us":..,"p99_us":..,"mean_us":..,"tps":..}`
 * Written in C so that the figure is the network path's, not an interpreter's.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

int main(int argc, char **argv) {
  int one = 1;
  char c = 'x';
  if (argc == 3 && strcmp(argv[1], "server") == 0) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 1) < 0) die("rr server");
    printf("listening\n");
    fflush(stdout);
    int s = accept(l, NULL, NULL);
    if (s < 0) die("accept");
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    while (read(s, &c, 1) == 1)
      if (write(s, &c, 1) != 1) break;
    return 0;
  }
  if (argc == 5 && strcmp(argv[1], "client") == 0) {
    int n = atoi(argv[4]);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[3]))};
    inet_pton(AF_INET, argv[2], &a.sin_addr);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    double *lat = malloc(sizeof(double) * n);
    double total = 0, start = 0;
    for (int i = -200; i < n; i++) {
      if (i == 0) start = now_us();
      double t0 = now_us();
      if (write(s, &c, 1) != 1 || read(s, &c, 1) != 1) die("round trip");
      if (i >= 0) {
        lat[i] = now_us() - t0;
        total += lat[i];
      }
    }
    double elapsed = now_us() - start;
    qsort(lat, n, sizeof(double), cmp);
    printf("{\"n\":%d,\"p50_us\":%.1f,\"p99_us\":%.1f,\"mean_us\":%.1f,\"tps\":%.0f}\n", n,
           lat[n / 2], lat[(int)(n * 0.99)], total / n, n / (elapsed / 1e6));
    return 0;
  }
  fprintf(stderr, "usage: rr server <port> | rr client <ip> <port> <n>\n");
  return 2;
}
