/*
 * The on_change runner (see onchange.h): one supervisor thread spawns
 * queued runs with posix_spawn (no shell, a fresh environment, every
 * descriptor above 2 closed), reaps them, and enforces the time limit.
 * Never passes or logs a value: a child gets only a path and a time.
 */
#include "onchange.h"

#include "cache.h"

#include "core/clock.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define TICK_MS 50
#define MAX_WORDS 64
#define SAFE_PATH \
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct job {
	char *path;
	time_t t;
	struct job *next;
};

struct child {
	pid_t pid;
	uint64_t start_ms;
	int termed;
	char *path;
};

struct kf_onchange {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* work queued, stop, or idle */
	char *words[MAX_WORDS + 2];
	size_t nw;
	const char *prog; /* the program's base name, for logs */
	struct kf_onchange_limits lim;
	struct job *head, **tail;    /* protected by lock */
	size_t qlen;		     /* protected by lock */
	struct child *kids;	     /* protected by lock: lim.running slots */
	size_t nkids;		     /* protected by lock */
	int stop;		     /* protected by lock */
	struct kf_onchange_stats st; /* protected by lock */
	pthread_t thread;
};

static uint64_t now_ms(void)
{
	return kf_clock_now_ms();
}

int kf_onchange_check(const char *command, char *msg, size_t n)
{
	char prog[4096];
	size_t len = strcspn(command, " ");
	struct stat st;
	size_t words = 0;

	for (const char *c = command; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f) {
			(void)snprintf(msg, n, "a control character");
			return -1;
		}
	for (const char *c = command; *c; c += strspn(c, " "), words++)
		c += strcspn(c, " ");
	if (command[0] != '/' || len >= sizeof(prog)) {
		(void)snprintf(msg, n, "must start with an absolute path");
		return -1;
	}
	if (words > MAX_WORDS) {
		(void)snprintf(msg, n, "more than %d words", MAX_WORDS);
		return -1;
	}
	memcpy(prog, command, len);
	prog[len] = '\0';
	if (stat(prog, &st) < 0 || !S_ISREG(st.st_mode) ||
	    access(prog, X_OK) < 0) {
		(void)snprintf(msg, n, "%s is not an executable file", prog);
		return -1;
	}
	return 0;
}

/* Split command at spaces into oc->words. */
static int split(struct kf_onchange *oc, const char *command)
{
	const char *c = command;

	while (*c) {
		size_t l = strcspn(c, " ");

		if (l) {
			if (oc->nw == MAX_WORDS)
				return -1;
			oc->words[oc->nw] = strndup(c, l);
			if (!oc->words[oc->nw])
				return -1;
			oc->nw++;
		}
		c += l;
		c += strspn(c, " ");
	}
	if (!oc->nw)
		return -1;
	oc->prog = strrchr(oc->words[0], '/') + 1;
	return 0;
}

static void child_done_locked(struct kf_onchange *oc, size_t i, int status)
{
	struct child *k = &oc->kids[i];
	int bad = !WIFEXITED(status) || WEXITSTATUS(status) != 0;

	if (bad) {
		oc->st.failed++;
		if (k->termed)
			kf_log(KF_LOG_WARN,
			       "on_change: %s for %s: killed after the "
			       "time limit (%u s)",
			       oc->prog, k->path, oc->lim.limit_ms / 1000);
		else if (WIFSIGNALED(status))
			kf_log(KF_LOG_WARN,
			       "on_change: %s for %s: killed by signal %d",
			       oc->prog, k->path, WTERMSIG(status));
		else
			kf_log(KF_LOG_WARN,
			       "on_change: %s for %s: exit status %d", oc->prog,
			       k->path, WEXITSTATUS(status));
	}
	oc->st.finished++;
	free(k->path);
	oc->kids[i] = oc->kids[--oc->nkids];
}

/* Reap finished children and enforce the time limit. */
static void reap_locked(struct kf_onchange *oc, uint64_t t)
{
	for (size_t i = 0; i < oc->nkids;) {
		struct child *k = &oc->kids[i];
		int status;

		if (waitpid(k->pid, &status, WNOHANG) == k->pid) {
			child_done_locked(oc, i, status);
			continue;
		}
		if (t - k->start_ms >= oc->lim.limit_ms + oc->lim.kill_ms) {
			kill(k->pid, SIGKILL);
		} else if (t - k->start_ms >= oc->lim.limit_ms && !k->termed) {
			kill(k->pid, SIGTERM);
			k->termed = 1;
		}
		i++;
	}
}

/* The child's environment, from scratch. */
static void child_env(char env[3][4200], char *envp[4], const char *path,
		      time_t t)
{
	struct tm tm;
	char ts[32] = "";

	if (gmtime_r(&t, &tm))
		(void)strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	/* path is at most a FUSE path (4096): never cut */
	(void)snprintf(env[0], sizeof(env[0]), "%s", SAFE_PATH);
	(void)snprintf(env[1], sizeof(env[1]), "KEYFS_PATH=%s", path);
	(void)snprintf(env[2], sizeof(env[2]), "KEYFS_EVENT_TIME=%s", ts);
	envp[0] = env[0];
	envp[1] = env[1];
	envp[2] = env[2];
	envp[3] = NULL;
}

static void spawn_locked(struct kf_onchange *oc, struct job *j)
{
	posix_spawn_file_actions_t fa;
	char env[3][4200], *envp[4];
	pid_t pid;
	int rc;

	oc->words[oc->nw] = j->path;
	oc->words[oc->nw + 1] = NULL;
	child_env(env, envp, j->path, j->t);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	/* Nothing of the daemon's: not /dev/fuse, not the store. */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	rc = posix_spawn(&pid, oc->words[0], &fa, NULL, oc->words, envp);
	posix_spawn_file_actions_destroy(&fa);
	oc->words[oc->nw] = NULL;
	explicit_bzero(env, sizeof(env));
	oc->st.started++;
	if (rc != 0) {
		oc->st.failed++;
		oc->st.finished++;
		kf_log(KF_LOG_WARN, "on_change: %s for %s: cannot run: %s",
		       oc->prog, j->path, strerror(rc));
		free(j->path);
		return;
	}
	oc->kids[oc->nkids].pid = pid;
	oc->kids[oc->nkids].start_ms = now_ms();
	oc->kids[oc->nkids].termed = 0;
	oc->kids[oc->nkids].path = j->path;
	oc->nkids++;
	if (oc->nkids > oc->st.peak)
		oc->st.peak = oc->nkids;
}

/* Start queued runs while there is room. */
static void start_locked(struct kf_onchange *oc)
{
	while (oc->head && oc->nkids < oc->lim.running) {
		struct job *j = oc->head;

		oc->head = j->next;
		if (!oc->head)
			oc->tail = &oc->head;
		oc->qlen--;
		spawn_locked(oc, j);
		free(j);
	}
}

static void drop_queue_locked(struct kf_onchange *oc)
{
	while (oc->head) {
		struct job *j = oc->head;

		oc->head = j->next;
		free(j->path);
		free(j);
	}
	oc->tail = &oc->head;
	oc->qlen = 0;
}

/* At stop: kill what is still running past the deadline, reap it. */
static void kill_all_locked(struct kf_onchange *oc)
{
	while (oc->nkids) {
		int status;

		kill(oc->kids[0].pid, SIGKILL);
		(void)waitpid(oc->kids[0].pid, &status, 0);
		child_done_locked(oc, 0, status);
	}
}

static void *supervisor(void *arg)
{
	struct kf_onchange *oc = arg;
	uint64_t deadline = 0;
	struct timespec ts;

	pthread_mutex_lock(&oc->lock);
	for (;;) {
		uint64_t t = now_ms();

		reap_locked(oc, t);
		if (oc->stop) {
			drop_queue_locked(oc);
			if (!deadline)
				deadline = t + oc->lim.stop_ms;
			if (!oc->nkids || t >= deadline)
				break;
		} else {
			start_locked(oc);
		}
		if (!oc->nkids && !oc->head)
			pthread_cond_broadcast(&oc->cond);
		kf_cache_abstime(TICK_MS, &ts);
		pthread_cond_timedwait(&oc->cond, &oc->lock, &ts);
	}
	kill_all_locked(oc);
	pthread_cond_broadcast(&oc->cond);
	pthread_mutex_unlock(&oc->lock);
	return NULL;
}

static void free_words(struct kf_onchange *oc)
{
	for (size_t i = 0; i < oc->nw; i++)
		free(oc->words[i]);
}

struct kf_onchange *kf_onchange_new(const char *command,
				    const struct kf_onchange_limits *lim)
{
	static const struct kf_onchange_limits def = {
		KF_ONCHANGE_RUNNING, KF_ONCHANGE_QUEUE, KF_ONCHANGE_LIMIT_MS,
		KF_ONCHANGE_KILL_MS, KF_ONCHANGE_STOP_MS
	};
	struct kf_onchange *oc = calloc(1, sizeof(*oc));

	if (!oc)
		return NULL;
	oc->lim = lim ? *lim : def;
	if (!oc->lim.running)
		oc->lim.running = 1;
	oc->kids = calloc(oc->lim.running, sizeof(*oc->kids));
	oc->tail = &oc->head;
	if (!oc->kids || split(oc, command) < 0)
		goto fail;
	pthread_mutex_init(&oc->lock, NULL);
	pthread_cond_init(&oc->cond, NULL);
	if (pthread_create(&oc->thread, NULL, supervisor, oc) != 0) {
		pthread_mutex_destroy(&oc->lock);
		pthread_cond_destroy(&oc->cond);
		goto fail;
	}
	return oc;
fail:
	free_words(oc);
	free(oc->kids);
	free(oc);
	return NULL;
}

int kf_onchange_run(struct kf_onchange *oc, const char *path, time_t t)
{
	struct job *j = calloc(1, sizeof(*j));

	if (j)
		j->path = strdup(path);
	if (!j || !j->path) {
		free(j);
		return -1;
	}
	j->t = t;
	pthread_mutex_lock(&oc->lock);
	if (oc->stop || oc->qlen >= oc->lim.queue) {
		oc->st.dropped++;
		pthread_mutex_unlock(&oc->lock);
		kf_log(KF_LOG_WARN,
		       "on_change: %s for %s: not run (%u runs already "
		       "waiting)",
		       oc->prog, path, oc->lim.queue);
		free(j->path);
		free(j);
		return -1;
	}
	*oc->tail = j;
	oc->tail = &j->next;
	oc->qlen++;
	pthread_cond_broadcast(&oc->cond);
	pthread_mutex_unlock(&oc->lock);
	return 0;
}

void kf_onchange_stats(struct kf_onchange *oc, struct kf_onchange_stats *st)
{
	pthread_mutex_lock(&oc->lock);
	*st = oc->st;
	pthread_mutex_unlock(&oc->lock);
}

int kf_onchange_drain(struct kf_onchange *oc, unsigned ms)
{
	uint64_t end = now_ms() + ms;
	int rc;

	pthread_mutex_lock(&oc->lock);
	while ((oc->head || oc->nkids) && now_ms() < end) {
		pthread_mutex_unlock(&oc->lock);
		usleep(TICK_MS * 1000);
		pthread_mutex_lock(&oc->lock);
	}
	rc = oc->head || oc->nkids ? -1 : 0;
	pthread_mutex_unlock(&oc->lock);
	return rc;
}

void kf_onchange_free(struct kf_onchange *oc)
{
	if (!oc)
		return;
	pthread_mutex_lock(&oc->lock);
	oc->stop = 1;
	pthread_cond_broadcast(&oc->cond);
	pthread_mutex_unlock(&oc->lock);
	pthread_join(oc->thread, NULL);
	pthread_mutex_destroy(&oc->lock);
	pthread_cond_destroy(&oc->cond);
	free_words(oc);
	free(oc->kids);
	free(oc);
}
