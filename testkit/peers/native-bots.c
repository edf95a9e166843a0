/*
 * Native counting bots: hundreds of receive-only WebRTC peers in one epoll loop.
 *
 * Each peer has its own UDP socket, does ICE as the controlling agent toward an
 * ICE-lite server (mediasoup), a DTLS 1.2 client handshake (OpenSSL, memory BIOs,
 * use_srtp: the profiles libdatachannel offers), then counts the RTP it receives from the cleartext RTP header only
 * (no SRTP decryption): packets, bytes, sequence gaps per SSRC, video frame ends
 * (marker bit) and freezes (gaps > FREEZE_MS between frame ends). It keeps ICE
 * consent fresh with a Binding Request every few seconds.
 *
 * The Node side (native-bots.ts) does the signaling and drives this process with
 * one command per line on stdin; events and counters come back as JSON lines:
 *   add <id> <ip> <port> <server ufrag> <server pwd> <own ufrag> <server sha-256 fp|-> <audio pts|-> <video pts|->
 *   remove <id>
 *   dump                       -> {"ev":"dump","peers":{"<id>":[...counters...]}}
 *   quit
 * events: {"ev":"ready","fingerprint":"..."} {"ev":"state","id":..,"state":"connected"|"failed","reason":..}
 *         {"ev":"frame","id":..} (first video frame end) {"ev":"error","id"?:..,"reason":..} (a bad command: ignored)
 *
 * Build: gcc -O2 -o bots native-bots.c -lssl -lcrypto
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PEERS 4096
#define MAX_SSRCS 16
#define FREEZE_MS 1000.0            /* same as testkit/peers/receiver.ts */
#define ICE_TIMEOUT_MS 10000.0      /* no answer to binding requests: failed */
#define DTLS_TIMEOUT_MS 15000.0     /* handshake not done: failed */
#define CONSENT_MS 4000.0           /* mediasoup drops a transport after 30 s without requests */
#define PROBATION_SSRC 1234u        /* mediasoup's bandwidth probes */
#define BATCH 32
#define BUF 2048
#define STDIN_SLOT 0xffffffffu
/*
 * After a round of work the loop sleeps this long before it polls again, so that each wake-up reads a batch of
 * packets from many sockets. Woken per packet instead, the bots cost about twice the CPU, and every wake-up is
 * charged to the sending mediasoup worker's core too (loopback delivery wakes the receiver in the sender's context).
 * Counting does not mind 1 ms; freezes are judged in seconds.
 */
#define BATCH_SLEEP_NS 1000000L

enum state { ICE, DTLS, CONNECTED, FAILED };
enum kind { NONE = 0, AUDIO = 1, VIDEO = 2 };

struct stream { uint64_t packets, bytes; int64_t lost; };
struct seq { uint32_t ssrc; uint16_t last; uint8_t used; };

struct peer {
  int used;
  char id[64];
  int fd;
  struct sockaddr_storage remote;
  socklen_t remote_len;
  char username[520];
  char pwd[260];
  char fp[128]; /* the server's sha-256 fingerprint, "AB:CD:.." or empty */
  uint8_t kinds[128];
  enum state state;
  double started, next_stun, interval;
  uint8_t tid[12];
  SSL *ssl;
  BIO *rbio, *wbio;
  struct stream audio, video;
  struct seq seqs[MAX_SSRCS];
  uint64_t frames, freezes, rtcp;
  double frozen_ms, last_frame;
  int first_frame;
};

static struct peer peers[MAX_PEERS];
static int epfd;
static SSL_CTX *ctx;
static char own_fp[128];

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void emit(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

/* JSON-safe copy of a message (OpenSSL error strings, commands). */
static void json_safe(char *dst, size_t n, const char *src) {
  size_t j = 0;
  for (size_t i = 0; src[i] && j + 1 < n; i++) dst[j++] = (src[i] == '"' || src[i] == '\\' || (unsigned char)src[i] < 32) ? '\'' : src[i];
  dst[j] = 0;
}

static void fail(struct peer *p, const char *why) {
  char s[300];
  if (p->state == FAILED) return;
  p->state = FAILED;
  json_safe(s, sizeof s, why);
  emit("{\"ev\":\"state\",\"id\":\"%s\",\"state\":\"failed\",\"reason\":\"%s\"}", p->id, s);
}

/* ---- STUN (RFC 8489 / 8445): the controlling agent's Binding Request ---- */

static uint32_t crc32(const uint8_t *b, size_t n) {
  static uint32_t table[256];
  if (!table[1])
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) c = table[(c ^ b[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

static void put16(uint8_t *b, uint16_t v) { b[0] = v >> 8; b[1] = v & 0xff; }
static void put32(uint8_t *b, uint32_t v) { put16(b, v >> 16); put16(b + 2, v & 0xffff); }

static size_t attr(uint8_t *b, size_t off, uint16_t type, const void *val, uint16_t len) {
  put16(b + off, type);
  put16(b + off + 2, len);
  memcpy(b + off + 4, val, len);
  size_t padded = (len + 3u) & ~3u;
  memset(b + off + 4 + len, 0, padded - len);
  return off + 4 + padded;
}

static void send_binding(struct peer *p, int nominate) {
  uint8_t b[700], v[8];
  put16(b, 0x0001);
  put32(b + 4, 0x2112A442);
  RAND_bytes(p->tid, 12);
  memcpy(b + 8, p->tid, 12);
  size_t off = attr(b, 20, 0x0006, p->username, (uint16_t)strlen(p->username)); /* USERNAME */
  put32(v, (126u << 24) | (65535u << 8) | 255u); /* a host candidate's priority */
  off = attr(b, off, 0x0024, v, 4);              /* PRIORITY */
  RAND_bytes(v, 8);
  off = attr(b, off, 0x802A, v, 8); /* ICE-CONTROLLING */
  if (nominate) off = attr(b, off, 0x0025, v, 0); /* USE-CANDIDATE */
  unsigned char mac[20];
  unsigned int maclen = 0;
  put16(b + 2, (uint16_t)(off - 20 + 24));
  HMAC(EVP_sha1(), p->pwd, (int)strlen(p->pwd), b, off, mac, &maclen);
  off = attr(b, off, 0x0008, mac, 20); /* MESSAGE-INTEGRITY */
  put16(b + 2, (uint16_t)(off - 20 + 8));
  put32(v, crc32(b, off) ^ 0x5354554eu);
  off = attr(b, off, 0x8028, v, 4); /* FINGERPRINT */
  if (send(p->fd, b, off, 0) < 0 && errno != EAGAIN) fail(p, strerror(errno));
}

/* ---- DTLS ---- */

static void flush_dtls(struct peer *p) {
  uint8_t out[BUF * 4];
  while (BIO_ctrl_pending(p->wbio) > 0) {
    int n = BIO_read(p->wbio, out, sizeof out);
    if (n <= 0) break;
    if (send(p->fd, out, (size_t)n, 0) < 0 && errno != EAGAIN) return fail(p, strerror(errno));
  }
}

static int accept_any(int ok, X509_STORE_CTX *c) { (void)ok; (void)c; return 1; } /* self-signed: checked by fingerprint */

static void fingerprint_of(X509 *x, char *out) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  X509_digest(x, EVP_sha256(), md, &n);
  for (unsigned int i = 0; i < n; i++) sprintf(out + 3 * i, "%02X%s", md[i], i + 1 < n ? ":" : "");
}

static void ssl_failed(struct peer *p, const char *what) {
  char s[256];
  unsigned long e = ERR_get_error();
  snprintf(s, sizeof s, "%s: %s", what, e ? ERR_error_string(e, NULL) : "no OpenSSL error");
  ERR_clear_error();
  fail(p, s);
}

static void handshake(struct peer *p) {
  int r = SSL_do_handshake(p->ssl);
  flush_dtls(p);
  if (r == 1) {
    X509 *x = SSL_get1_peer_certificate(p->ssl);
    char fp[128] = "";
    if (x) fingerprint_of(x, fp), X509_free(x);
    if (p->fp[0] && strcasecmp(fp, p->fp) != 0) return fail(p, "DTLS: the server's certificate does not match its fingerprint");
    p->state = CONNECTED;
    p->next_stun = now_ms() + CONSENT_MS * (0.5 + (rand() % 1000) / 1000.0);
    return emit("{\"ev\":\"state\",\"id\":\"%s\",\"state\":\"connected\"}", p->id);
  }
  int e = SSL_get_error(p->ssl, r);
  if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) ssl_failed(p, "DTLS handshake");
}

static void start_dtls(struct peer *p) {
  p->state = DTLS;
  p->started = now_ms();
  p->ssl = SSL_new(ctx);
  p->rbio = BIO_new(BIO_s_mem());
  p->wbio = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(p->rbio, -1);
  SSL_set_bio(p->ssl, p->rbio, p->wbio);
  SSL_set_options(p->ssl, SSL_OP_NO_QUERY_MTU);
  DTLS_set_link_mtu(p->ssl, 1200);
  SSL_set_connect_state(p->ssl);
  handshake(p);
}

/* ---- what arrives ---- */

static void count_rtp(struct peer *p, const uint8_t *b, size_t len, double now) {
  if (len < 12 || (b[0] >> 6) != 2) return;
  if (b[1] >= 192 && b[1] <= 223) { p->rtcp++; return; } /* RTCP (RFC 5761) */
  enum kind k = p->kinds[b[1] & 0x7f];
  uint32_t ssrc = (uint32_t)b[8] << 24 | (uint32_t)b[9] << 16 | (uint32_t)b[10] << 8 | b[11];
  if (k == NONE || ssrc == PROBATION_SSRC) return; /* RTX, probes, unknown payload types */
  struct stream *s = k == AUDIO ? &p->audio : &p->video;
  uint16_t seq = (uint16_t)(b[2] << 8 | b[3]);
  s->packets++;
  s->bytes += len;
  struct seq *q = NULL;
  for (int i = 0; i < MAX_SSRCS && !q; i++)
    if (p->seqs[i].used && p->seqs[i].ssrc == ssrc) q = &p->seqs[i];
  if (!q) {
    for (int i = 0; i < MAX_SSRCS && !q; i++)
      if (!p->seqs[i].used) q = &p->seqs[i];
    if (!q) q = &p->seqs[ssrc % MAX_SSRCS]; /* more SSRCs than slots: forget one */
    q->used = 1, q->ssrc = ssrc, q->last = seq;
  } else {
    uint16_t delta = (uint16_t)(seq - q->last);
    if (delta > 0 && delta < 0x8000) s->lost += delta - 1, q->last = seq;
    else if (delta != 0 && s->lost > 0) s->lost--; /* late: filled a gap */
  }
  if (k == VIDEO && (b[1] & 0x80)) {
    p->frames++;
    if (p->last_frame > 0 && now - p->last_frame > FREEZE_MS) p->freezes++, p->frozen_ms += now - p->last_frame;
    p->last_frame = now;
    if (!p->first_frame) {
      p->first_frame = 1;
      emit("{\"ev\":\"frame\",\"id\":\"%s\"}", p->id);
    }
  }
}

static void received(struct peer *p, uint8_t *b, size_t len, double now) {
  if (p->state == FAILED || len == 0) return;
  if (b[0] < 4) { /* STUN: our Binding Request answered */
    if (len < 20 || memcmp(b + 8, p->tid, 12) != 0) return;
    uint16_t type = (uint16_t)(b[0] << 8 | b[1]);
    if (type == 0x0111) {
      char s[64];
      int code = 0;
      for (size_t off = 20; off + 8 <= len;) { /* ERROR-CODE */
        uint16_t t = (uint16_t)(b[off] << 8 | b[off + 1]), l = (uint16_t)(b[off + 2] << 8 | b[off + 3]);
        if (t == 0x0009) code = (b[off + 6] & 7) * 100 + b[off + 7];
        off += 4 + ((l + 3u) & ~3u);
      }
      snprintf(s, sizeof s, "ICE: binding request refused (STUN error %d)", code);
      return fail(p, s);
    }
    if (type == 0x0101 && p->state == ICE) start_dtls(p);
  } else if (b[0] >= 20 && b[0] <= 63) { /* DTLS */
    if (!p->ssl) return;
    BIO_write(p->rbio, b, (int)len);
    if (p->state == DTLS) return handshake(p);
    uint8_t tmp[BUF];
    int r = SSL_read(p->ssl, tmp, sizeof tmp);
    if (r <= 0 && SSL_get_error(p->ssl, r) == SSL_ERROR_ZERO_RETURN) fail(p, "DTLS: the server closed the connection");
    ERR_clear_error();
    flush_dtls(p);
  } else if (b[0] >= 128 && b[0] <= 191 && p->state == CONNECTED) {
    count_rtp(p, b, len, now);
  }
}

static void readable(struct peer *p) {
  static uint8_t bufs[BATCH][BUF];
  static struct iovec iov[BATCH];
  static struct mmsghdr msgs[BATCH];
  for (;;) {
    for (int i = 0; i < BATCH; i++) {
      iov[i].iov_base = bufs[i], iov[i].iov_len = BUF;
      memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
      msgs[i].msg_hdr.msg_iov = &iov[i], msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(p->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) return; /* EAGAIN; ICMP errors (port unreachable) surface as the timeouts */
    double now = now_ms();
    for (int i = 0; i < n && p->used; i++) received(p, bufs[i], msgs[i].msg_len, now);
    if (n < BATCH || !p->used) return;
  }
}

/* ---- timers: binding retransmits, consent, DTLS retransmits ---- */

static void tick(double now) {
  for (int i = 0; i < MAX_PEERS; i++) {
    struct peer *p = &peers[i];
    if (!p->used) continue;
    if (p->state == ICE && now >= p->next_stun) {
      if (now - p->started > ICE_TIMEOUT_MS) {
        fail(p, "ICE: no answer to binding requests within 10 s");
        continue;
      }
      send_binding(p, 1);
      p->next_stun = now + p->interval;
      if (p->interval < 500) p->interval *= 2;
    } else if (p->state == DTLS) {
      if (now - p->started > DTLS_TIMEOUT_MS) {
        fail(p, "DTLS: handshake not done within 15 s");
        continue;
      }
      if (DTLSv1_handle_timeout(p->ssl) < 0) ssl_failed(p, "DTLS retransmission");
      else flush_dtls(p);
    } else if (p->state == CONNECTED && now >= p->next_stun) {
      send_binding(p, 0);
      p->next_stun = now + CONSENT_MS;
    }
  }
}

/* ---- commands ---- */

static struct peer *find(const char *id) {
  for (int i = 0; i < MAX_PEERS; i++)
    if (peers[i].used && strcmp(peers[i].id, id) == 0) return &peers[i];
  return NULL;
}

static int parse_kinds(struct peer *p, const char *list, enum kind k) {
  if (strcmp(list, "-") == 0) return 1;
  char copy[256];
  snprintf(copy, sizeof copy, "%s", list);
  for (char *save = NULL, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    char *end;
    long pt = strtol(t, &end, 10);
    if (*end || pt < 0 || pt > 127) return 0;
    p->kinds[pt] = (uint8_t)k;
  }
  return 1;
}

static int valid_token(const char *s, size_t max) {
  size_t n = strlen(s);
  if (n == 0 || n >= max) return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] <= 32 || s[i] == '"' || s[i] == '\\' || s[i] == ':') return 0;
  return 1;
}

static void close_peer(struct peer *p) {
  epoll_ctl(epfd, EPOLL_CTL_DEL, p->fd, NULL);
  close(p->fd);
  if (p->ssl) SSL_free(p->ssl); /* frees its BIOs */
  memset(p, 0, sizeof *p);
}

static const char *add(char **a, int n) {
  if (n != 10) return "add wants: add <id> <ip> <port> <server ufrag> <server pwd> <own ufrag> <fingerprint|-> <audio pts|-> <video pts|->";
  if (!valid_token(a[1], 64)) return "add: bad id";
  if (find(a[1])) return "add: that id is taken";
  if (!valid_token(a[4], 256) || !valid_token(a[5], 256) || !valid_token(a[6], 256)) return "add: bad ICE ufrag or pwd";
  struct peer *p = NULL;
  for (int i = 0; i < MAX_PEERS && !p; i++)
    if (!peers[i].used) p = &peers[i];
  if (!p) return "add: too many peers";
  memset(p, 0, sizeof *p);
  char *end;
  long port = strtol(a[3], &end, 10);
  if (*end || port <= 0 || port > 65535) return "add: bad port";
  struct sockaddr_in *v4 = (struct sockaddr_in *)&p->remote;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&p->remote;
  if (inet_pton(AF_INET, a[2], &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET, v4->sin_port = htons((uint16_t)port), p->remote_len = sizeof *v4;
  } else if (inet_pton(AF_INET6, a[2], &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6, v6->sin6_port = htons((uint16_t)port), p->remote_len = sizeof *v6;
  } else return "add: bad ip";
  if (strcmp(a[7], "-") != 0 && strlen(a[7]) >= sizeof p->fp) return "add: bad fingerprint";
  if (strcmp(a[7], "-") != 0) snprintf(p->fp, sizeof p->fp, "%s", a[7]);
  if (!parse_kinds(p, a[8], AUDIO) || !parse_kinds(p, a[9], VIDEO)) return "add: bad payload type list";
  int fd = socket(p->remote.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return "add: socket() failed";
  int size = 1 << 20; /* a 720p keyframe arrives as one burst */
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  if (connect(fd, (struct sockaddr *)&p->remote, p->remote_len) < 0) {
    close(fd);
    return "add: connect() failed";
  }
  snprintf(p->id, sizeof p->id, "%s", a[1]);
  snprintf(p->username, sizeof p->username, "%s:%s", a[4], a[6]);
  snprintf(p->pwd, sizeof p->pwd, "%s", a[5]);
  p->fd = fd;
  p->used = 1;
  p->state = ICE;
  p->started = now_ms();
  p->interval = 50;
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)(p - peers)};
  epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
  send_binding(p, 1);
  p->next_stun = p->started + p->interval;
  return NULL;
}

static void dump(double now) {
  static const char *names[] = {"ice", "dtls", "connected", "failed"};
  printf("{\"ev\":\"dump\",\"peers\":{");
  int first = 1;
  for (int i = 0; i < MAX_PEERS; i++) {
    struct peer *p = &peers[i];
    if (!p->used) continue;
    printf("%s\"%s\":[\"%s\",%llu,%llu,%lld,%llu,%llu,%lld,%llu,%llu,%.1f,%.1f]", first ? "" : ",", p->id, names[p->state],
           (unsigned long long)p->audio.packets, (unsigned long long)p->audio.bytes, (long long)p->audio.lost,
           (unsigned long long)p->video.packets, (unsigned long long)p->video.bytes, (long long)p->video.lost,
           (unsigned long long)p->frames, (unsigned long long)p->freezes, p->frozen_ms, p->last_frame > 0 ? now - p->last_frame : -1.0);
    first = 0;
  }
  emit("}}");
}

static void command(char *line) {
  char *a[12];
  int n = 0;
  for (char *save = NULL, *t = strtok_r(line, " \t\r", &save); t && n < 12; t = strtok_r(NULL, " \t\r", &save)) a[n++] = t;
  if (n == 0) return;
  const char *err = NULL;
  if (strcmp(a[0], "add") == 0) err = add(a, n);
  else if (strcmp(a[0], "remove") == 0 && n == 2) {
    struct peer *p = find(a[1]);
    if (p) close_peer(p);
  } else if (strcmp(a[0], "dump") == 0) dump(now_ms());
  else if (strcmp(a[0], "quit") == 0) exit(0);
  else err = "unknown command (add, remove, dump, quit)";
  if (err) {
    char s[300];
    json_safe(s, sizeof s, err);
    if (strcmp(a[0], "add") == 0 && n >= 2 && valid_token(a[1], 64)) emit("{\"ev\":\"error\",\"id\":\"%s\",\"reason\":\"%s\"}", a[1], s);
    else emit("{\"ev\":\"error\",\"reason\":\"%s\"}", s);
  }
}

static void read_commands(void) {
  static char buf[1 << 16];
  static size_t len;
  ssize_t r = read(0, buf + len, sizeof buf - 1 - len);
  if (r <= 0) exit(0); /* the Node side is gone */
  len += (size_t)r;
  char *start = buf, *nl;
  while ((nl = memchr(start, '\n', len - (size_t)(start - buf)))) {
    *nl = 0;
    command(start);
    start = nl + 1;
  }
  len -= (size_t)(start - buf);
  memmove(buf, start, len);
  if (len == sizeof buf - 1) len = 0; /* a line too long: dropped */
}

static void setup_tls(void) {
  EVP_PKEY *key = EVP_EC_gen("prime256v1");
  X509 *x = X509_new();
  if (!key || !x) exit(2);
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), rand());
  X509_gmtime_adj(X509_getm_notBefore(x), -86400);
  X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400);
  X509_set_pubkey(x, key);
  X509_NAME *name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"whipcast-native-bots", -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509_sign(x, key, EVP_sha256());
  fingerprint_of(x, own_fp);
  ctx = SSL_CTX_new(DTLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION);
  SSL_CTX_use_certificate(ctx, x);
  SSL_CTX_use_PrivateKey(ctx, key);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, accept_any);
  /* the profile libdatachannel bots get, so the server encrypts the same way for either bot */
  if (SSL_CTX_set_tlsext_use_srtp(ctx, "SRTP_AEAD_AES_256_GCM:SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80") != 0) exit(2);
  SSL_CTX_set_read_ahead(ctx, 1);
}

int main(void) {
  unsigned seed;
  RAND_bytes((unsigned char *)&seed, sizeof seed);
  srand(seed);
  setup_tls();
  epfd = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = STDIN_SLOT};
  epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev);
  emit("{\"ev\":\"ready\",\"fingerprint\":\"%s\"}", own_fp);
  struct epoll_event evs[256];
  double last_tick = now_ms();
  for (;;) {
    int n = epoll_wait(epfd, evs, 256, 20);
    for (int i = 0; i < n; i++) {
      if (evs[i].data.u32 == STDIN_SLOT) read_commands();
      else if (peers[evs[i].data.u32].used) readable(&peers[evs[i].data.u32]);
    }
    double now = now_ms();
    if (now - last_tick >= 20) {
      last_tick = now;
      tick(now);
    }
    if (n > 0) nanosleep(&(struct timespec){.tv_nsec = BATCH_SLEEP_NS}, NULL);
  }
}
