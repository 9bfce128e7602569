/* tests/e2e/xattr_tool.c — a static helper the layer e2e test copies into its build
 * context, because busybox has neither setcap nor setfattr:
 *   xattr-tool set PATH NAME VALUE   (VALUE "0x<hex>" for binary, e.g. a capability)
 *   xattr-tool get PATH NAME         (prints the value as hex; exit 1 when absent) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

int main(int argc, char** argv) {
  if (argc == 4 && strcmp(argv[1], "get") == 0) {
    unsigned char buf[4096];
    ssize_t n = lgetxattr(argv[2], argv[3], buf, sizeof buf);
    if (n < 0) return 1;
    for (ssize_t i = 0; i < n; ++i) printf("%02x", buf[i]);
    printf("\n");
    return 0;
  }
  if (argc != 5 || strcmp(argv[1], "set") != 0) {
    fprintf(stderr, "usage: xattr-tool set PATH NAME VALUE | get PATH NAME\n");
    return 2;
  }
  const char* value = argv[4];
  size_t n = strlen(value);
  char buf[4096];
  if (strncmp(value, "0x", 2) == 0) {
    n = 0;
    for (const char* p = value + 2; p[0] && p[1] && n < sizeof buf; p += 2) {
      char hex[3] = {p[0], p[1], 0};
      buf[n++] = (char)strtol(hex, NULL, 16);
    }
    value = buf;
  }
  if (lsetxattr(argv[2], argv[3], value, n, 0) != 0) {
    perror("lsetxattr");
    return 1;
  }
  return 0;
}
