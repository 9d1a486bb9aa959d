// SPDX-License-Identifier: BSD-2-Clause
/*
 * Settings: built-in defaults, overridden by MRCACHE_* environment
 * variables, overridden by the fields the caller set in mrc_cache_attr.
 * The caller's code wins because a runtime that sets a field does so for a
 * reason the operator may not see; the environment is for everything the
 * runtime leaves open. Every variable is listed in doc/mrcache.3.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bool_words.h"
#include "config.h"
#include "error.h"

typedef int (*mrc_parse_fn)(const char *name, const char *text,
			    uint64_t *value);

struct mrc_env_setting {
	const char *name;
	mrc_parse_fn parse;
	size_t offset;		/* in struct mrc_config */
	unsigned int width;	/* bytes of that field */
};

static int parse_count(const char *name, const char *text, uint64_t *value)
{
	char *end;

	errno = 0;
	if (text[0] == '-' || text[0] == '\0')
		goto bad;
	*value = strtoull(text, &end, 0);
	if (errno || *end != '\0')
		goto bad;
	return 0;
bad:
	return mrc_error(EINVAL, "%s=\"%s\" is not a non-negative integer",
			 name, text);
}

static int parse_size(const char *name, const char *text, uint64_t *value)
{
	static const char units[] = "kmgt";
	const char *unit;
	char *end;
	uint64_t v;
	int shift;

	if (!strcasecmp(text, "inf") || !strcasecmp(text, "unlimited")) {
		*value = 0;
		return 0;
	}
	errno = 0;
	if (text[0] == '-' || text[0] == '\0')
		goto bad;
	v = strtoull(text, &end, 0);
	if (errno)
		goto bad;
	if (*end != '\0') {
		unit = strchr(units, *end | 0x20);
		if (!unit || end[1] != '\0')
			goto bad;
		shift = 10 * (int)(unit - units + 1);
		if (v > (UINT64_MAX >> shift))
			goto bad;
		v <<= shift;
	}
	*value = v;
	return 0;
bad:
	return mrc_error(EINVAL,
			 "%s=\"%s\" is not a size (bytes, optional K/M/G/T suffix, or \"inf\")",
			 name, text);
}

/* A duration: "500ms", "30s", "2m", "1h", a bare number of seconds, or "inf". */
static int parse_duration(const char *name, const char *text, uint64_t *value)
{
	static const struct { const char *suffix; uint64_t ms; } units[] = {
		{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
		{ "h", 3600000 },
	};
	char *end;
	uint64_t v;

	if (!strcasecmp(text, "inf") || !strcasecmp(text, "off")) {
		*value = 0;
		return 0;
	}
	errno = 0;
	v = text[0] == '-' ? 0 : strtoull(text, &end, 10);
	if (!errno && text[0] != '-' && end != text) {
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			if (!strcasecmp(end, units[i].suffix) &&
			    v <= MRC_IDLE_TIMEOUT_MAX_MS / units[i].ms) {
				*value = v * units[i].ms;
				return 0;
			}
		}
	}
	return mrc_error(EINVAL, "%s=\"%s\" is not a duration up to 24 days (e.g. 500ms, 30s, 2m; a bare number is seconds; \"inf\")",
			 name, text);
}

static int parse_bool(const char *name, const char *text, uint64_t *value)
{
	if (mrc_bool_yes(text)) {
		*value = 1;
		return 0;
	}
	if (mrc_bool_no(text)) {
		*value = 0;
		return 0;
	}
	return mrc_error(EINVAL, "%s=\"%s\" is not a boolean (0/1, yes/no, on/off)",
			 name, text);
}

static int parse_choice(const char *name, const char *text, uint64_t *value,
			const char *const *choices, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (choices[i] && !strcasecmp(text, choices[i])) {
			*value = i;
			return 0;
		}
	}
	return mrc_error(EINVAL, "%s=\"%s\" is not one of the accepted values (see mrcache(3))",
			 name, text);
}

static const char *const merge_names[] = {
	[MRC_MERGE_NONE] = "none",
	[MRC_MERGE_OVERLAP] = "overlap",
	[MRC_MERGE_ADJACENT] = "adjacent",
};

static const char *const monitor_names[] = {
	[MRC_MONITOR_AUTO] = "auto",
	[MRC_MONITOR_MANUAL] = "manual",
	[MRC_MONITOR_KMOD] = "kmod",
	[MRC_MONITOR_UFFD] = "uffd",
	[MRC_MONITOR_HOOKS] = "hooks",
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static int parse_merge(const char *name, const char *text, uint64_t *value)
{
	return parse_choice(name, text, value, merge_names,
			    ARRAY_SIZE(merge_names));
}

static int parse_monitor(const char *name, const char *text, uint64_t *value)
{
	/* "none" reads better than "manual" for operators turning it off. */
	if (!strcasecmp(text, "none")) {
		*value = MRC_MONITOR_MANUAL;
		return 0;
	}
	return parse_choice(name, text, value, monitor_names,
			    ARRAY_SIZE(monitor_names));
}

const char *mrc_monitor_kind_name(uint32_t kind)
{
	return kind < ARRAY_SIZE(monitor_names) ? monitor_names[kind] : "?";
}

#define SETTING(env, fn, field)						\
	{ env, fn, offsetof(struct mrc_config, field),			\
	  sizeof(((struct mrc_config *)0)->field) }

static const struct mrc_env_setting env_settings[] = {
	SETTING("MRCACHE_MAX_BYTES", parse_size, max_bytes),
	SETTING("MRCACHE_MAX_REGIONS", parse_count, max_regions),
	SETTING("MRCACHE_MERGE", parse_merge, merge),
	SETTING("MRCACHE_MEMLOCK", parse_bool, memlock),
	SETTING("MRCACHE_CHECK_PFN", parse_count, check_pfn),
	SETTING("MRCACHE_MONITOR", parse_monitor, monitor),
	SETTING("MRCACHE_STATS", parse_bool, print_stats),
	SETTING("MRCACHE_PROGRESS_THREAD", parse_bool, progress_thread),
	SETTING("MRCACHE_THREAD_REFS", parse_bool, thread_refs),
	SETTING("MRCACHE_IDLE_TIMEOUT", parse_duration, idle_timeout_ms),
};

static int store_setting(const struct mrc_env_setting *s, uint64_t value,
			 struct mrc_config *config)
{
	char *field = (char *)config + s->offset;

	if (s->width == sizeof(uint32_t)) {
		if (value > UINT32_MAX)
			return mrc_error(EINVAL, "%s=%" PRIu64 " is too large",
					 s->name, value);
		*(uint32_t *)field = (uint32_t)value;
	} else {
		*(uint64_t *)field = value;
	}
	return 0;
}

static int load_environment(struct mrc_config *config)
{
	for (size_t i = 0; i < ARRAY_SIZE(env_settings); i++) {
		const struct mrc_env_setting *s = &env_settings[i];
		const char *text = getenv(s->name);
		uint64_t value;
		int ret;

		if (!text)
			continue;
		ret = s->parse(s->name, text, &value);
		if (!ret)
			ret = store_setting(s, value, config);
		if (ret)
			return ret;
	}
	return 0;
}

static int attr_has(const struct mrc_cache_attr *attr, uint64_t bits)
{
	return attr && (attr->comp_mask & bits) == bits;
}

/*
 * Fields valid alone that contradict each other when the caller sets both.
 * Only the caller's own fields: an operator's MRCACHE_MONITOR=none must not
 * make a program that asks for a progress thread fail to start.
 */
static int check_attr_combination(const struct mrc_cache_attr *attr)
{
	if (attr_has(attr, MRC_ATTR_MONITOR | MRC_ATTR_PROGRESS_THREAD) &&
	    attr->progress_thread && attr->monitor == MRC_MONITOR_MANUAL &&
	    !(attr_has(attr, MRC_ATTR_IDLE_TIMEOUT) && attr->idle_timeout_ms))
		return mrc_error(EINVAL, "mrc_cache_attr.progress_thread=1 has nothing to do with MRC_MONITOR_MANUAL and no idle_timeout_ms: set an idle timeout or another monitor");
	if (attr_has(attr, MRC_ATTR_IDLE_TIMEOUT | MRC_ATTR_PROGRESS_THREAD) &&
	    attr->idle_timeout_ms && !attr->progress_thread)
		return mrc_error(EINVAL, "mrc_cache_attr.idle_timeout_ms is enforced by the progress thread; mrc_cache_attr.progress_thread is 0");
	return 0;
}

static int check_attr(const struct mrc_cache_attr *attr)
{
	if (attr->comp_mask & ~(uint64_t)MRC_ATTR_ALL)
		return mrc_error(EINVAL, "mrc_cache_attr.comp_mask has unknown bits 0x%" PRIx64,
				 attr->comp_mask & ~(uint64_t)MRC_ATTR_ALL);
	if ((attr->comp_mask & MRC_ATTR_MERGE) && attr->merge > MRC_MERGE_ADJACENT)
		return mrc_error(EINVAL, "mrc_cache_attr.merge=%u is not an enum mrc_merge",
				 attr->merge);
	if ((attr->comp_mask & MRC_ATTR_MONITOR) && attr->monitor > MRC_MONITOR_HOOKS)
		return mrc_error(EINVAL, "mrc_cache_attr.monitor=%u is not an enum mrc_monitor_kind",
				 attr->monitor);
	if ((attr->comp_mask & MRC_ATTR_MEMLOCK) && attr->memlock > 1)
		return mrc_error(EINVAL, "mrc_cache_attr.memlock must be 0 or 1");
	if ((attr->comp_mask & MRC_ATTR_PRINT_STATS) && attr->print_stats > 1)
		return mrc_error(EINVAL, "mrc_cache_attr.print_stats must be 0 or 1");
	if ((attr->comp_mask & MRC_ATTR_PROGRESS_THREAD) && attr->progress_thread > 1)
		return mrc_error(EINVAL, "mrc_cache_attr.progress_thread must be 0 or 1");
	if ((attr->comp_mask & MRC_ATTR_IDLE_TIMEOUT) &&
	    attr->idle_timeout_ms > MRC_IDLE_TIMEOUT_MAX_MS)
		return mrc_error(EINVAL, "mrc_cache_attr.idle_timeout_ms=%" PRIu64 " is more than 24 days (%u ms)",
				 attr->idle_timeout_ms, MRC_IDLE_TIMEOUT_MAX_MS);
	if (attr->reserved)
		return mrc_error(EINVAL, "mrc_cache_attr.reserved must be 0");
	return check_attr_combination(attr);
}

static void apply_attr(const struct mrc_cache_attr *attr,
		       struct mrc_config *config)
{
	uint64_t m = attr->comp_mask;

	if (m & MRC_ATTR_MAX_BYTES)
		config->max_bytes = attr->max_bytes;
	if (m & MRC_ATTR_MAX_REGIONS)
		config->max_regions = attr->max_regions;
	if (m & MRC_ATTR_MERGE)
		config->merge = attr->merge;
	if (m & MRC_ATTR_MEMLOCK)
		config->memlock = attr->memlock;
	if (m & MRC_ATTR_CHECK_PFN)
		config->check_pfn = attr->check_pfn;
	if (m & MRC_ATTR_DEFAULT_ACCESS)
		config->default_access = attr->default_access;
	if (m & MRC_ATTR_MONITOR)
		config->monitor = attr->monitor;
	if (m & MRC_ATTR_PRINT_STATS)
		config->print_stats = attr->print_stats;
	if (m & MRC_ATTR_PROGRESS_THREAD)
		config->progress_thread = attr->progress_thread;
	if (m & MRC_ATTR_IDLE_TIMEOUT)
		config->idle_timeout_ms = attr->idle_timeout_ms;
}

/*
 * The idle bound is enforced by the progress thread, so setting it starts
 * the thread, unless the caller said "no thread": the caller wins (config
 * order), and a bound set only by the environment is then dropped, said
 * once on stderr rather than silently ignored.
 */
static void settle_progress(const struct mrc_cache_attr *attr,
			    struct mrc_config *config)
{
	static int warned;

	if (!config->idle_timeout_ms || config->progress_thread)
		return;
	if (!attr_has(attr, MRC_ATTR_PROGRESS_THREAD)) {
		config->progress_thread = 1;
		return;
	}
	if (!__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
		mrc_warn("MRCACHE_IDLE_TIMEOUT is ignored: the program turned the progress thread off (mrc_cache_attr.progress_thread=0), and it is what releases idle registrations");
	config->idle_timeout_ms = 0;
}

/**
 * mrc_config_load() - settle a cache's settings.
 * @attr: the caller's attributes, or NULL.
 * @config: filled in.
 *
 * Return: 0, or -EINVAL with a message naming the bad variable or field.
 */
int mrc_config_load(const struct mrc_cache_attr *attr,
		    struct mrc_config *config)
{
	int ret;

	*config = (struct mrc_config){
		.merge = MRC_MERGE_ADJACENT,
		.memlock = 1,
		.monitor = MRC_MONITOR_AUTO,
		/* Used only where membarrier allows it (mrc_trefs_available). */
		.thread_refs = 1,
	};
	ret = load_environment(config);
	if (!ret && attr)
		ret = check_attr(attr);
	if (ret)
		return ret;
	if (attr)
		apply_attr(attr, config);
	settle_progress(attr, config);
	return 0;
}
