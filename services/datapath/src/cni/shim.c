/*
 * ciliate-cni, the executable a container runtime runs: a small native front for the plugin.
 *
 * Starting Node for every CNI call costs ~100 ms of CPU, which on a small node caps pod set-up
 * well below 20 pods/s. This front hands the whole invocation (the CNI_* environment and stdin)
 * to the node agent over its unix socket; the agent runs the plugin's TypeScript core
 * (runPlugin) on it and answers with the exit code and stdout. So every check and every error
 * is still produced by the same code.
 *
 * Whenever the fast path cannot be taken (VERSION, a config it cannot read, the agent not
 * answering), it execs the Node plugin (dist/cni/main.js next to this binary) with the same
 * stdin, which produces the spec's answer, including "agent unreachable" (11) and STATUS 50.
 *
 * Wire: request `{"v":1,"invoke":{"env":{...},"stdin":"..."}}\n`; reply `<exit code>\n<stdout>`
 * until the agent closes the connection.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef NODE_BINARY
#define NODE_BINARY "node"
#endif
#define DEFAULT_SOCKET "/var/run/ciliate/cni.sock"
#define MAX_STDIN (1 << 20)
#define REPLY_TIMEOUT_S 120

extern char **environ;

static char *in;
static size_t in_len;

/* Runs the Node plugin with the stdin already read (through a pipe). Does not return. */
static void fallback(void) {
  char exe[PATH_MAX], script[PATH_MAX + 32];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n < 0) {
    perror("ciliate-cni: /proc/self/exe");
    exit(1);
  }
  exe[n] = 0;
  snprintf(script, sizeof script, "%s/cni/main.js", dirname(exe));
  int p[2];
  if (pipe(p) < 0) {
    perror("ciliate-cni: pipe");
    exit(1);
  }
  pid_t pid = fork();
  if (pid < 0) {
    perror("ciliate-cni: fork");
    exit(1);
  }
  if (pid == 0) {
    /* the child feeds stdin to the plugin (a config may exceed the pipe buffer) */
    close(p[0]);
    size_t off = 0;
    while (off < in_len) {
      ssize_t w = write(p[1], in + off, in_len - off);
      if (w <= 0) _exit(0);
      off += (size_t)w;
    }
    _exit(0);
  }
  close(p[1]);
  dup2(p[0], 0);
  close(p[0]);
  char *argv[] = {(char *)NODE_BINARY, script, NULL};
  execv(NODE_BINARY, argv);
  execvp("node", argv);
  perror("ciliate-cni: exec node");
  exit(1);
}

static const char *skip_ws(const char *s, const char *end) {
  while (s < end && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')) s++;
  return s;
}

/* Skips a JSON string starting at the quote; returns the position after it or NULL. */
static const char *skip_string(const char *s, const char *end) {
  for (s++; s < end; s++) {
    if (*s == '\\') s++;
    else if (*s == '"') return s + 1;
  }
  return NULL;
}

/* Skips one JSON value (structure only: the Node plugin validates it properly). */
static const char *skip_value(const char *s, const char *end) {
  s = skip_ws(s, end);
  if (s >= end) return NULL;
  if (*s == '"') return skip_string(s, end);
  if (*s == '{' || *s == '[') {
    int depth = 0;
    while (s < end) {
      if (*s == '"') {
        s = skip_string(s, end);
        if (!s) return NULL;
        continue;
      }
      if (*s == '{' || *s == '[') depth++;
      else if (*s == '}' || *s == ']') {
        if (--depth == 0) return s + 1;
      }
      s++;
    }
    return NULL;
  }
  while (s < end && *s != ',' && *s != '}' && *s != ']' && *s != ' ' && *s != '\n') s++;
  return s;
}

/* The top-level "socketPath" of the config: 1 found (copied), 0 absent, -1 unreadable. */
static int socket_path(char *out, size_t cap) {
  const char *s = in, *end = in + in_len;
  s = skip_ws(s, end);
  if (s >= end || *s != '{') return -1;
  s++;
  for (;;) {
    s = skip_ws(s, end);
    if (s < end && *s == '}') return 0;
    if (s >= end || *s != '"') return -1;
    const char *k = s + 1;
    const char *ke = skip_string(s, end);
    if (!ke) return -1;
    size_t klen = (size_t)(ke - 1 - k);
    s = skip_ws(ke, end);
    if (s >= end || *s != ':') return -1;
    s = skip_ws(s + 1, end);
    if (klen == 10 && memcmp(k, "socketPath", 10) == 0) {
      if (s >= end || *s != '"') return -1;
      const char *v = s + 1;
      const char *ve = skip_string(s, end);
      if (!ve) return -1;
      size_t vlen = (size_t)(ve - 1 - v);
      if (memchr(v, '\\', vlen) || vlen == 0 || vlen >= cap) return -1;
      memcpy(out, v, vlen);
      out[vlen] = 0;
      return 1;
    }
    s = skip_value(s, end);
    if (!s) return -1;
    s = skip_ws(s, end);
    if (s < end && *s == ',') {
      s++;
      continue;
    }
    if (s < end && *s == '}') return 0;
    return -1;
  }
}

struct buf {
  char *p;
  size_t len, cap;
};

static void put(struct buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    while (b->len + n + 1 > b->cap) b->cap = b->cap ? b->cap * 2 : 4096;
    b->p = realloc(b->p, b->cap);
    if (!b->p) {
      perror("ciliate-cni: realloc");
      exit(1);
    }
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

static void puts_(struct buf *b, const char *s) { put(b, s, strlen(s)); }

static void put_json_string(struct buf *b, const char *s, size_t n) {
  put(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    char esc[8];
    if (c == '"' || c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)c;
      put(b, esc, 2);
    } else if (c < 0x20) {
      snprintf(esc, sizeof esc, "\\u%04x", c);
      put(b, esc, 6);
    } else {
      put(b, (const char *)&s[i], 1);
    }
  }
  put(b, "\"", 1);
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int main(void) {
  size_t cap = 65536;
  in = malloc(cap);
  for (;;) {
    if (in_len == cap) {
      if (cap >= MAX_STDIN) break;
      cap *= 2;
      in = realloc(in, cap);
    }
    ssize_t r = read(0, in + in_len, cap - in_len);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    in_len += (size_t)r;
  }

  const char *cmd = getenv("CNI_COMMAND");
  if (!cmd || strcmp(cmd, "VERSION") == 0) fallback();
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  int found = socket_path(addr.sun_path, sizeof addr.sun_path);
  if (found < 0) fallback();
  if (found == 0) strcpy(addr.sun_path, DEFAULT_SOCKET);

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) fallback();
  struct timeval tv = {.tv_sec = REPLY_TIMEOUT_S};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

  struct buf req = {0};
  puts_(&req, "{\"v\":1,\"invoke\":{\"env\":{");
  int first = 1;
  for (char **e = environ; *e; e++) {
    if (strncmp(*e, "CNI_", 4) != 0) continue;
    const char *eq = strchr(*e, '=');
    if (!eq) continue;
    if (!first) put(&req, ",", 1);
    first = 0;
    put_json_string(&req, *e, (size_t)(eq - *e));
    put(&req, ":", 1);
    put_json_string(&req, eq + 1, strlen(eq + 1));
  }
  puts_(&req, "},\"stdin\":");
  put_json_string(&req, in, in_len);
  puts_(&req, "}}\n");
  if (write_all(fd, req.p, req.len) < 0) fallback();

  struct buf rep = {0};
  char chunk[65536];
  for (;;) {
    ssize_t r = read(fd, chunk, sizeof chunk);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      /* timed out or broken after the request was sent: the Node plugin reports it */
      fallback();
    }
    if (r == 0) break;
    put(&rep, chunk, (size_t)r);
  }
  close(fd);
  char *nl = rep.p ? memchr(rep.p, '\n', rep.len) : NULL;
  if (!nl) fallback();
  *nl = 0;
  char *endp;
  long code = strtol(rep.p, &endp, 10);
  if (*endp != 0 || code < 0 || code > 255) fallback();
  size_t off = (size_t)(nl + 1 - rep.p);
  if (write_all(1, rep.p + off, rep.len - off) < 0) return 1;
  return (int)code;
}
