/*
 * vscmi-guest: a tiny static arm64 Linux tool for the virtio-SCMI guest test.
 *
 * Built freestanding (no libc: the cross compiler has no arm64 libc here) by
 * qemu/linux/guest-test.sh with
 *   aarch64-linux-gnu-gcc -static -nostdlib -ffreestanding -O2 -o vscmi-guest vscmi-guest.c
 * It talks to Linux only through system calls (svc #0, arm64 numbers).
 *
 *   vscmi-guest raw PROTO MSG [WORD...]
 *       Send one SCMI command through the SCMI raw-mode debugfs file
 *       (/sys/kernel/debug/scmi/0/raw/message; CONFIG_ARM_SCMI_RAW_MODE_SUPPORT
 *       + _COEX) and print the reply as
 *         status=<signed> len=<payload bytes> words=<hex>,<hex>,...
 *       WORDs are little-endian u32 parameters (decimal or 0x-hex). The
 *       header is msg_id | protocol << 10 | token << 18 (SCMI v3.2 §4.1.1),
 *       with a token Linux itself is unlikely to be using (raw mode takes the
 *       caller's token as is).
 *   vscmi-guest bench-raw N PROTO MSG [WORD...]
 *       The same command N times on one open file; prints
 *         n=<N> ok=<replies with status 0> ns=<total> min_ns=<> max_ns=<>
 *         slow=<requests over 10 ms>
 *   vscmi-guest bench-file N PATH
 *       open/read/close PATH N times (a hwmon *_input file: each read is one
 *       SENSOR_READING_GET, scmi-hwmon does not cache); prints the same
 *       figures plus last=<the last value read>.
 *   vscmi-guest read-files PATH...
 *       The first word of each file, one line each ("error<errno>" when the
 *       read fails), from one process.
 *
 * Exit status 0 when every request got a reply, 1 otherwise (a raw read or
 * write that fails prints errno=<n>), 2 on usage errors.
 */

typedef unsigned long u64;
typedef long s64;
typedef unsigned int u32;
typedef int s32;
typedef unsigned char u8;

#define SYS_openat 56
#define SYS_close 57
#define SYS_read 63
#define SYS_write 64
#define SYS_exit 93
#define SYS_clock_gettime 113
#define AT_FDCWD (-100)
#define O_RDONLY 0
#define O_RDWR 2
#define CLOCK_MONOTONIC 1

#define RAW_PATH "/sys/kernel/debug/scmi/0/raw/message"
#define TOKEN 0x3a5u

static s64 sys3(s64 n, s64 a, s64 b, s64 c)
{
	register s64 x8 __asm__("x8") = n;
	register s64 x0 __asm__("x0") = a;
	register s64 x1 __asm__("x1") = b;
	register s64 x2 __asm__("x2") = c;
	__asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
	return x0;
}

static s64 sys4(s64 n, s64 a, s64 b, s64 c, s64 d)
{
	register s64 x8 __asm__("x8") = n;
	register s64 x0 __asm__("x0") = a;
	register s64 x1 __asm__("x1") = b;
	register s64 x2 __asm__("x2") = c;
	register s64 x3 __asm__("x3") = d;
	__asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
	return x0;
}

static __attribute__((noreturn)) void die(int code)
{
	for (;;)
		sys3(SYS_exit, code, 0, 0);
}

/* Output goes through one buffer, flushed at each newline. */
static char obuf[1024];
static u64 olen;

static void flush(void)
{
	u64 off = 0;
	while (off < olen) {
		s64 r = sys3(SYS_write, 1, (s64)(obuf + off), (s64)(olen - off));
		if (r <= 0)
			break;
		off += (u64)r;
	}
	olen = 0;
}

static void puts_(const char *s)
{
	while (*s) {
		if (olen == sizeof(obuf))
			flush();
		obuf[olen++] = *s;
		if (*s++ == '\n')
			flush();
	}
}

static void putu(u64 v)
{
	char t[24];
	int i = 23;
	t[i] = 0;
	do {
		t[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	puts_(t + i);
}

static void puts_i(s64 v)
{
	if (v < 0) {
		puts_("-");
		putu((u64)(-(v + 1)) + 1);
	} else {
		putu((u64)v);
	}
}

static void putx(u32 v)
{
	static const char hex[] = "0123456789abcdef";
	char t[11];
	t[0] = '0';
	t[1] = 'x';
	for (int i = 0; i < 8; i++)
		t[2 + i] = hex[(v >> (28 - 4 * i)) & 0xf];
	t[10] = 0;
	puts_(t);
}

/* Parses decimal or 0x-hex into *out; 0 on success. */
static int parse(const char *s, u64 *out)
{
	u64 v = 0;
	int base = 10, any = 0;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (; *s; s++) {
		u32 d;
		if (*s >= '0' && *s <= '9')
			d = (u32)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (u32)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (u32)(*s - 'A' + 10);
		else
			return -1;
		if (v > (~0ul - d) / (u64)base)
			return -1;
		v = v * (u64)base + d;
		any = 1;
	}
	*out = v;
	return any ? 0 : -1;
}

static u64 now_ns(void)
{
	s64 ts[2] = { 0, 0 };
	sys3(SYS_clock_gettime, CLOCK_MONOTONIC, (s64)ts, 0);
	return (u64)ts[0] * 1000000000ul + (u64)ts[1];
}

static void usage(void)
{
	puts_("usage: vscmi-guest raw PROTO MSG [WORD...] | bench-raw N PROTO MSG [WORD...] | bench-file N PATH | read-files PATH...\n");
	die(2);
}

/* The request: header + up to 32 words (Linux accepts 4 + 128 bytes). */
static u32 req[33];
static u64 req_len;
static u8 rbuf[512];

static void build(int argc, char **argv, int first)
{
	u64 proto, msg, w;
	if (argc < first + 2 || argc - first - 2 > 32)
		usage();
	if (parse(argv[first], &proto) || proto > 0xff || parse(argv[first + 1], &msg) || msg > 0xff)
		usage();
	req[0] = (u32)msg | (u32)proto << 10 | TOKEN << 18;
	req_len = 1;
	for (int i = first + 2; i < argc; i++) {
		if (parse(argv[i], &w) || w > 0xffffffffu)
			usage();
		req[req_len++] = (u32)w;
	}
}

/* One request/reply on fd; returns the reply length (>= 0) or -errno. */
static s64 transact(int fd)
{
	s64 r = sys3(SYS_write, fd, (s64)req, (s64)(req_len * 4));
	if (r < 0)
		return r;
	s64 got = 0;
	for (;;) {
		r = sys3(SYS_read, fd, (s64)(rbuf + got), (s64)(sizeof(rbuf) - (u64)got));
		if (r < 0)
			return r;
		if (r == 0)
			break;
		got += r;
		if ((u64)got == sizeof(rbuf))
			break;
	}
	return got;
}

static s32 reply_status(s64 len)
{
	if (len < 8)
		return -100;
	return (s32)((u32)rbuf[4] | (u32)rbuf[5] << 8 | (u32)rbuf[6] << 16 | (u32)rbuf[7] << 24);
}

static int cmd_raw(int argc, char **argv)
{
	build(argc, argv, 2);
	s64 fd = sys4(SYS_openat, AT_FDCWD, (s64)RAW_PATH, O_RDWR, 0);
	if (fd < 0) {
		puts_("status=none errno=");
		puts_i(-fd);
		puts_(" (open " RAW_PATH ")\n");
		return 1;
	}
	s64 len = transact((int)fd);
	sys3(SYS_close, fd, 0, 0);
	if (len < 0) {
		puts_("status=none errno=");
		puts_i(-len);
		puts_("\n");
		return 1;
	}
	puts_("status=");
	puts_i(reply_status(len));
	puts_(" len=");
	puts_i(len >= 8 ? len - 8 : 0);
	puts_(" words=");
	for (s64 off = 8; off + 4 <= len; off += 4) {
		u32 v = (u32)rbuf[off] | (u32)rbuf[off + 1] << 8 | (u32)rbuf[off + 2] << 16 |
			(u32)rbuf[off + 3] << 24;
		if (off > 8)
			puts_(",");
		putx(v);
	}
	puts_("\n");
	return len >= 8 ? 0 : 1;
}

/* Requests slower than this are counted apart (stalls, not the rate). */
#define SLOW_NS 10000000ul
static u64 slow;

static void report(u64 n, u64 ok, u64 total, u64 mn, u64 mx)
{
	puts_("n=");
	putu(n);
	puts_(" ok=");
	putu(ok);
	puts_(" ns=");
	putu(total);
	puts_(" min_ns=");
	putu(n ? mn : 0);
	puts_(" max_ns=");
	putu(mx);
	puts_(" slow=");
	putu(slow);
}

static int cmd_bench_raw(int argc, char **argv)
{
	u64 n, ok = 0, mn = ~0ul, mx = 0;
	if (argc < 3 || parse(argv[2], &n))
		usage();
	build(argc, argv, 3);
	s64 fd = sys4(SYS_openat, AT_FDCWD, (s64)RAW_PATH, O_RDWR, 0);
	if (fd < 0) {
		puts_("n=0 errno=");
		puts_i(-fd);
		puts_("\n");
		return 1;
	}
	s64 err = 0;
	u64 start = now_ns();
	for (u64 i = 0; i < n; i++) {
		/* A new token each time: raw mode releases a transfer after it
		 * has handed the reply over, and a write that reuses a token
		 * still in flight waits max_rx_timeout_ms / 10 before retrying
		 * (raw_mode.c scmi_xfer_raw_get_init), a 200 ms stall here.
		 * Linux takes its own tokens lowest-free-first, so cycling
		 * through the top 256 stays clear of them. */
		req[0] = (req[0] & ~(0x3ffu << 18)) | (0x300u + (u32)(i & 0xff)) << 18;
		u64 t0 = now_ns();
		s64 len = transact((int)fd);
		u64 dt = now_ns() - t0;
		if (len < 0) {
			err = len;
			break;
		}
		if (reply_status(len) == 0)
			ok++;
		if (dt < mn)
			mn = dt;
		if (dt > mx)
			mx = dt;
		if (dt > SLOW_NS)
			slow++;
	}
	u64 total = now_ns() - start;
	sys3(SYS_close, fd, 0, 0);
	report(n, ok, total, mn, mx);
	if (err) {
		puts_(" errno=");
		puts_i(-err);
	}
	puts_("\n");
	return ok == n ? 0 : 1;
}

static int cmd_bench_file(int argc, char **argv)
{
	u64 n, ok = 0, mn = ~0ul, mx = 0;
	if (argc != 4 || parse(argv[2], &n))
		usage();
	char last[64];
	last[0] = 0;
	u64 start = now_ns();
	for (u64 i = 0; i < n; i++) {
		u64 t0 = now_ns();
		s64 fd = sys4(SYS_openat, AT_FDCWD, (s64)argv[3], O_RDONLY, 0);
		s64 r = -1;
		if (fd >= 0) {
			r = sys3(SYS_read, fd, (s64)last, sizeof(last) - 1);
			sys3(SYS_close, fd, 0, 0);
		}
		u64 dt = now_ns() - t0;
		if (r > 0) {
			ok++;
			last[r] = 0;
			for (s64 k = 0; k < r; k++)
				if (last[k] == '\n')
					last[k] = 0;
		}
		if (dt < mn)
			mn = dt;
		if (dt > mx)
			mx = dt;
		if (dt > SLOW_NS)
			slow++;
	}
	u64 total = now_ns() - start;
	report(n, ok, total, mn, mx);
	puts_(" last=");
	puts_(last[0] ? last : "none");
	puts_("\n");
	return ok == n ? 0 : 1;
}

/* read-files PATH...: one line "<value>" per PATH (first line of the file,
 * or "error<errno>"), all from one process so a series of sysfs reads takes
 * milliseconds, not one fork per file. */
static int cmd_read_files(int argc, char **argv)
{
	char v[128];
	int bad = 0;
	for (int i = 2; i < argc; i++) {
		s64 fd = sys4(SYS_openat, AT_FDCWD, (s64)argv[i], O_RDONLY, 0);
		s64 r = fd;
		if (fd >= 0) {
			r = sys3(SYS_read, fd, (s64)v, sizeof(v) - 1);
			sys3(SYS_close, fd, 0, 0);
		}
		if (r < 0) {
			puts_("error");
			putu((u64)-r);
			bad = 1;
		} else {
			v[r] = 0;
			for (s64 k = 0; k < r; k++)
				if (v[k] == '\n' || v[k] == ' ')
					v[k] = 0;
			puts_(v[0] ? v : "empty");
		}
		puts_("\n");
	}
	return bad;
}

static int streq(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

int vscmi_main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	if (streq(argv[1], "raw"))
		return cmd_raw(argc, argv);
	if (streq(argv[1], "bench-raw"))
		return cmd_bench_raw(argc, argv);
	if (streq(argv[1], "bench-file"))
		return cmd_bench_file(argc, argv);
	if (streq(argv[1], "read-files"))
		return cmd_read_files(argc, argv);
	usage();
	return 2;
}

/* Entry: the kernel leaves argc at [sp] and argv right after it. */
__attribute__((used)) void vscmi_start_c(u64 *sp)
{
	int argc = (int)sp[0];
	char **argv = (char **)(sp + 1);
	int rc = vscmi_main(argc, argv);
	flush();
	die(rc);
}

__asm__(".text\n"
	".global _start\n"
	"_start:\n"
	"	mov x0, sp\n"
	"	and sp, x0, #~15\n"
	"	bl vscmi_start_c\n"
	"	b .\n");

/* gcc may emit calls to these even freestanding. */
void *memset(void *d, int c, u64 n)
{
	u8 *p = d;
	while (n--)
		*p++ = (u8)c;
	return d;
}

void *memcpy(void *d, const void *s, u64 n)
{
	u8 *p = d;
	const u8 *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}
