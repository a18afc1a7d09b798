/*
 * secpath.h: the paths that carry trust (sockets, data and key
 * directories, trust bundles, CA files), checked from / down as OpenSSH
 * checks its files.
 *
 * Each component of the path, from / to the last, must belong to root or
 * to the effective uid and must not be writable by group or others.  A
 * directory that others may write is acceptable only above the last
 * component, and only when it is sticky and belongs to root or to us, as
 * /tmp: others can neither remove nor rename what we have in it, but they
 * may have made anything else, so the component below it must belong to
 * root or to us.  A symbolic link obeys the same owner rule and is then
 * followed, its target checked component by component (/var/run -> /run).
 * A relative path is taken from the working directory, whose own chain is
 * checked too.  Once a path passes, only root or we can change what it
 * names (for a client, also those root handed a directory to, see
 * secpath_check_socket()): using it afterwards by name is not a race.
 *
 * Every function writes to why (SECPATH_MAX_WHY bytes are enough; "" on
 * success) a line naming the offending component, with its owner and its
 * mode when those are what is wrong.
 * Codes: WICK_ERR_PERM (an unsafe owner or mode), WICK_ERR_NOT_FOUND (a
 * component is missing), WICK_ERR_INVALID (a component of the wrong type),
 * WICK_ERR_LIMIT (too long, too many links), WICK_ERR_IO (a system call
 * failed), WICK_ERR_ALLOC.
 */
#ifndef WICK_SECPATH_H
#define WICK_SECPATH_H

#include <sys/types.h>

#include <limits.h>
#include <stddef.h>

#include "err.h"

#define SECPATH_MAX_WHY		(PATH_MAX + 256)
#define SECPATH_MAX_LINKS	40	/* symbolic links followed per path */
#define SECPATH_PARENT_MODE	0755	/* directories made above the last */

/*
 * A directory for the daemon's own files and sockets.  What is missing is
 * made (SECPATH_PARENT_MODE above, mode for dir itself, owned by us, the
 * modes set exactly whatever the umask); after each mkdir() the component
 * is examined again with lstat(), so one that another user made first is
 * refused like any other.  An existing dir must belong to us and grant no
 * permission beyond mode: it is never chmod()ed (it may be /tmp or /run).
 */
int	 secpath_mkdir(const char *dir, mode_t mode, char *why, size_t whylen)
	    WICK_WUR;
/* The same for the directory that holds path (a socket, a file). */
int	 secpath_mkdir_parent(const char *path, mode_t mode, char *why,
	    size_t whylen) WICK_WUR;

/*
 * A file the daemon reads and trusts: every component as above, and the
 * file itself regular, root's or ours, not writable by group or others.
 */
int	 secpath_check_file(const char *path, char *why, size_t whylen)
	    WICK_WUR;

/*
 * For a client, before it connects: the socket's directories as above and
 * the socket root's or ours (by owner only: its mode is who may connect).
 * A client also accepts, whoever owns it, a component that sits in a
 * directory only root or that directory's owner can write, since root put
 * it there or handed it over: /run/wick-server, made by root for a server
 * that runs as its own user.  It never does below a directory others can
 * write (/tmp), which is where another user can lie in wait.
 * WICK_ERR_NOT_FOUND when a component is missing: do not connect then,
 * another user could make it in between.
 */
int	 secpath_check_socket(const char *path, char *why, size_t whylen)
	    WICK_WUR;

#endif /* WICK_SECPATH_H */
