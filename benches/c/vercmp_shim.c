/*
 * Batch entry points into the C reference implementations, for
 * benches/benches/vercmp.rs: librpm's rpmvercmp / rpmverCmp and libdpkg's
 * dpkg_version_compare. One FFI call runs a whole batch of comparisons, so
 * what is measured is the C comparison, not the cost of crossing from Rust.
 *
 * Each batch returns a checksum of the verdicts (acc = acc * 3 + sign + 1,
 * wrapping), which the bench recomputes from our own verdicts: equal
 * checksums mean both sides decided every pair the same way.
 */
#define LIBDPKG_VOLATILE_API 1
#include <dpkg/dpkg.h>
#include <dpkg/dpkg-db.h>
#include <dpkg/version.h>
#include <rpm/rpmver.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

static inline uint64_t mix(uint64_t acc, int rc)
{
	return acc * 3 + (uint64_t)((rc > 0) - (rc < 0) + 1);
}

uint64_t c_rpmvercmp_batch(const char *const *a, const char *const *b, size_t n)
{
	uint64_t acc = 0;
	for (size_t i = 0; i < n; i++)
		acc = mix(acc, rpmvercmp(a[i], b[i]));
	return acc;
}

/* Parses n "[E:]V[-R]" strings with rpmverParse; NULL if any is refused. */
rpmver *c_rpmver_parse_batch(const char *const *s, size_t n)
{
	rpmver *out = calloc(n ? n : 1, sizeof(*out));
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		out[i] = rpmverParse(s[i]);
		if (out[i] == NULL)
			return NULL;
	}
	return out;
}

uint64_t c_rpmvercmp_evr_batch(const rpmver *a, const rpmver *b, size_t n)
{
	uint64_t acc = 0;
	for (size_t i = 0; i < n; i++)
		acc = mix(acc, rpmverCmp(a[i], b[i]));
	return acc;
}

/*
 * Parses n Debian versions with libdpkg's parseversion; NULL if any is
 * refused (warnings count as refusals, as in dpkg --validate-version).
 * The strings parseversion allocates are never freed: this is a benchmark.
 */
struct dpkg_version *c_dpkg_parse_batch(const char *const *s, size_t n)
{
	struct dpkg_version *out = calloc(n ? n : 1, sizeof(*out));
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		struct dpkg_error err;
		if (parseversion(&out[i], s[i], &err) < 0) {
			dpkg_error_destroy(&err);
			return NULL;
		}
	}
	return out;
}

uint64_t c_dpkg_compare_batch(const struct dpkg_version *a,
                              const struct dpkg_version *b, size_t n)
{
	uint64_t acc = 0;
	for (size_t i = 0; i < n; i++)
		acc = mix(acc, dpkg_version_compare(&a[i], &b[i]));
	return acc;
}
