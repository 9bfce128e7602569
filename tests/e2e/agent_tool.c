// tests/e2e/agent_tool.c — a tiny SSH agent client for the e2e tests, static so that it
// runs in a busybox container (which has no ssh-add): `agent_tool SOCKET list` prints the
// number of keys and their comments, `sign` signs a few bytes with the first key and
// prints "signed", `remove-all` prints "refused" or "removed". Exit 1 on any failure.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int full_io(int fd, unsigned char* buf, size_t n, int writing) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = writing ? write(fd, buf + done, n - done) : read(fd, buf + done, n - done);
    if (r <= 0) return -1;
    done += (size_t)r;
  }
  return 0;
}

static uint32_t get32(const unsigned char* p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void put32(unsigned char* p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

/// Sends one message (type + payload) and reads the reply into a malloc'd buffer.
static unsigned char* request(int fd, unsigned char type, const unsigned char* payload, uint32_t len,
                              uint32_t* reply_len) {
  unsigned char head[5];
  put32(head, len + 1);
  head[4] = type;
  if (full_io(fd, head, 5, 1) < 0 || (len && full_io(fd, (unsigned char*)payload, len, 1) < 0)) return NULL;
  unsigned char rl[4];
  if (full_io(fd, rl, 4, 0) < 0) return NULL;
  *reply_len = get32(rl);
  if (*reply_len == 0 || *reply_len > 256 * 1024) return NULL;
  unsigned char* reply = malloc(*reply_len);
  if (!reply || full_io(fd, reply, *reply_len, 0) < 0) return NULL;
  return reply;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: agent_tool SOCKET list|sign|remove-all\n");
    return 2;
  }
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr*)&a, sizeof a) < 0) {
    perror("connect");
    return 1;
  }
  uint32_t n = 0;
  if (strcmp(argv[2], "remove-all") == 0) {
    unsigned char* r = request(fd, 19, NULL, 0, &n);
    if (!r) return 1;
    printf("%s\n", r[0] == 5 ? "refused" : r[0] == 6 ? "removed" : "unexpected");
    return 0;
  }
  unsigned char* r = request(fd, 11, NULL, 0, &n);  // REQUEST_IDENTITIES
  if (!r || n < 5 || r[0] != 12) return 1;
  uint32_t keys = get32(r + 1), off = 5;
  if (strcmp(argv[2], "list") == 0) printf("%u", keys);
  const unsigned char* first_blob = NULL;
  uint32_t first_len = 0;
  for (uint32_t i = 0; i < keys; ++i) {
    if (off + 4 > n) return 1;
    uint32_t bl = get32(r + off);
    if (off + 4 + bl + 4 > n) return 1;
    if (i == 0) {
      first_blob = r + off + 4;
      first_len = bl;
    }
    off += 4 + bl;
    uint32_t cl = get32(r + off);
    if (off + 4 + cl > n) return 1;
    if (strcmp(argv[2], "list") == 0) printf(" %.*s", (int)cl, (const char*)(r + off + 4));
    off += 4 + cl;
  }
  if (strcmp(argv[2], "list") == 0) {
    printf("\n");
    return 0;
  }
  if (strcmp(argv[2], "sign") != 0 || !first_blob) return 1;
  // SIGN_REQUEST: string key blob, string data, uint32 flags.
  static const char data[] = "builder e2e";
  uint32_t len = 4 + first_len + 4 + (uint32_t)(sizeof data - 1) + 4;
  unsigned char* p = malloc(len);
  if (!p) return 1;
  put32(p, first_len);
  memcpy(p + 4, first_blob, first_len);
  put32(p + 4 + first_len, (uint32_t)(sizeof data - 1));
  memcpy(p + 8 + first_len, data, sizeof data - 1);
  put32(p + 8 + first_len + sizeof data - 1, 0);
  unsigned char* s = request(fd, 13, p, len, &n);
  if (!s) return 1;
  printf("%s\n", s[0] == 14 ? "signed" : "not signed");
  return s[0] == 14 ? 0 : 1;
}
