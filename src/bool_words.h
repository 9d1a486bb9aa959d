/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The words a boolean setting accepts, in one place: src/config.c parses
 * MRCACHE_* switches with them, and threadrefs/mode.h (also compiled into
 * the benches and tests, outside the library) predicts from them what the
 * parser will make of MRCACHE_THREAD_REFS.
 */
#ifndef MRC_BOOL_WORDS_H
#define MRC_BOOL_WORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <strings.h>

static inline bool mrc_bool_word_in(const char *text,
				    const char *const words[4])
{
	for (size_t i = 0; i < 4; i++)
		if (!strcasecmp(text, words[i]))
			return true;
	return false;
}

/* @text reads as true. */
static inline bool mrc_bool_yes(const char *text)
{
	static const char *const yes[4] = { "1", "yes", "on", "true" };

	return mrc_bool_word_in(text, yes);
}

/* @text reads as false. */
static inline bool mrc_bool_no(const char *text)
{
	static const char *const no[4] = { "0", "no", "off", "false" };

	return mrc_bool_word_in(text, no);
}

#endif /* MRC_BOOL_WORDS_H */
