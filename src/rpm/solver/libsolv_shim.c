/*
 * The thin C side of cosa's libsolv binding: what needs libsolv's struct
 * layouts or inline helpers (pool_id2solvable, FOR_PROVIDES, maps).
 * Everything with a choice in it (which packages, which jobs, which flags)
 * is decided in Rust (src/rpm/solver/); this file only carries it out.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <solv/bitmap.h>
#include <solv/pool.h>
#include <solv/poolarch.h>
#include <solv/problems.h>
#include <solv/queue.h>
#include <solv/repo.h>
#include <solv/repo_repomdxml.h>
#include <solv/repo_rpmmd.h>
#include <solv/repo_solv.h>
#include <solv/repo_write.h>
#include <solv/solv_xfopen.h>
#include <solv/rules.h>
#include <solv/solver.h>
#include <solv/testcase.h>

/* A pool with RPM semantics for `arch`, with an empty installed repo, as
 * dnf has when it installs into an empty root. NULL when this libsolv
 * cannot do RPM version semantics. */
Pool *cosa_pool_new(const char *arch)
{
  Pool *pool = pool_create();
  if (pool_setdisttype(pool, DISTTYPE_RPM) < 0)
    {
      pool_free(pool);
      return NULL;
    }
  /* dnf's sack keeps excluded packages visible to whatprovides, and lets
   * packages of one name but different arch colors (x86_64 and i686)
   * coexist (dnf --debugsolver: poolflags implicitobsoleteusescolors
   * whatprovideswithdisabled). */
  pool_set_flag(pool, POOL_FLAG_WHATPROVIDESWITHDISABLED, 1);
  pool_set_flag(pool, POOL_FLAG_IMPLICITOBSOLETEUSESCOLORS, 1);
  pool_setarch(pool, arch);
  pool_set_installed(pool, repo_create(pool, "@System"));
  return pool;
}

void cosa_pool_free(Pool *pool)
{
  if (pool->considered)
    {
      map_free(pool->considered);
      free(pool->considered);
      pool->considered = NULL;
    }
  pool_free(pool);
}

Repo *cosa_repo_new(Pool *pool, const char *name, int priority, int subpriority)
{
  Repo *repo = repo_create(pool, name);
  repo->priority = priority;
  repo->subpriority = subpriority;
  return repo;
}

/* Open `path`, decompressed as a file named `as` would be (libsolv picks
 * the codec by suffix: .gz, .xz, .zst; the caller names it from the magic
 * bytes). */
static FILE *open_as(Pool *pool, const char *path, const char *as)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  FILE *fp;
  if (fd < 0)
    {
      pool_error(pool, -1, "%s: %s", path, strerror(errno));
      return NULL;
    }
  fp = solv_xfopen_fd(as, fd, "r");
  if (!fp)
    {
      pool_error(pool, -1, "%s: cannot decompress as %s", path, as);
      close(fd);
    }
  return fp;
}

/* Load repomd.xml and primary.xml into the empty `repo` as libdnf does
 * without a cache: repo_add_repomdxml, repo_add_rpmmd, then a switch to the
 * written solv data (repo_write, repo_empty, repo_add_solv). The round trip
 * is what orders each package's dependency lists as dnf's pool has them,
 * from its first run on. The solv data is handed to the caller in *solv
 * (*solv_len bytes; free with cosa_free) to keep as a cache for
 * cosa_repo_add_solv_file. 0 on success, else -1 and pool_errstr says why. */
int cosa_repo_add_rpmmd(Repo *repo, const char *repomd, const char *repomd_as,
                        const char *primary, const char *primary_as,
                        char **solv, size_t *solv_len)
{
  Pool *pool = repo->pool;
  char *buf = NULL;
  size_t len = 0;
  FILE *fp, *mem;
  int r;

  *solv = NULL;
  *solv_len = 0;
  if (!(fp = open_as(pool, repomd, repomd_as)))
    return -1;
  r = repo_add_repomdxml(repo, fp, 0);
  fclose(fp);
  if (r)
    return -1;
  if (!(fp = open_as(pool, primary, primary_as)))
    return -1;
  r = repo_add_rpmmd(repo, fp, 0, 0);
  fclose(fp);
  if (r)
    return -1;

  if (!(mem = open_memstream(&buf, &len)))
    return pool_error(pool, -1, "open_memstream: %s", strerror(errno));
  r = repo_write(repo, mem);
  if (fclose(mem) || r)
    {
      free(buf);
      return r ? -1 : pool_error(pool, -1, "writing solv data: %s", strerror(errno));
    }
  repo_empty(repo, 1);
  if (!(fp = fmemopen(buf, len, "r")))
    {
      free(buf);
      return pool_error(pool, -1, "fmemopen: %s", strerror(errno));
    }
  r = repo_add_solv(repo, fp, 0);
  fclose(fp);
  if (r)
    {
      free(buf);
      return -1;
    }
  *solv = buf;
  *solv_len = len;
  return 0;
}

/* Load solv data that cosa_repo_add_rpmmd handed out into the empty
 * `repo`. 0 on success; else -1, pool_errstr says why, and the repo is
 * left empty. */
int cosa_repo_add_solv_file(Repo *repo, const char *path)
{
  Pool *pool = repo->pool;
  FILE *fp = fopen(path, "re");
  int r;
  if (!fp)
    return pool_error(pool, -1, "%s: %s", path, strerror(errno));
  r = repo_add_solv(repo, fp, 0);
  fclose(fp);
  if (r)
    {
      repo_empty(repo, 1);
      return -1;
    }
  return 0;
}

/* The solvable ids of `repo`: [*start, *end). */
void cosa_repo_range(Repo *repo, Id *start, Id *end)
{
  *start = repo->start;
  *end = repo->end;
}

/* Name, evr and arch of solvable `p` (pool-owned strings). */
void cosa_solvable_nea(Pool *pool, Id p, const char **name, const char **evr, const char **arch)
{
  Solvable *s = pool_id2solvable(pool, p);
  *name = pool_id2str(pool, s->name);
  *evr = pool_id2str(pool, s->evr);
  *arch = s->arch ? pool_id2str(pool, s->arch) : "";
}

const char *cosa_pool_errstr(Pool *pool)
{
  return pool_errstr(pool);
}

Id cosa_str(Pool *pool, const char *s, unsigned int len)
{
  return pool_strn2id(pool, s, len, 1);
}

Id cosa_rel(Pool *pool, Id name, Id evr, int flags)
{
  return pool_rel2id(pool, name, evr, flags, 1);
}

Id cosa_solvable_new(Repo *repo, Id name, Id evr, Id arch)
{
  Id p = repo_add_solvable(repo);
  Solvable *s = pool_id2solvable(repo->pool, p);
  s->name = name;
  s->evr = evr;
  s->arch = arch;
  return p;
}

/* kind: 0 provides, 1 requires, 2 conflicts, 3 obsoletes, 4 recommends,
 * 5 suggests, 6 supplements, 7 enhances. */
void cosa_solvable_dep(Pool *pool, Id p, int kind, Id dep, Id marker)
{
  Solvable *s = pool_id2solvable(pool, p);
  Repo *repo = s->repo;
  switch (kind)
    {
    case 0: s->provides = repo_addid_dep(repo, s->provides, dep, marker); break;
    case 1: s->requires = repo_addid_dep(repo, s->requires, dep, marker); break;
    case 2: s->conflicts = repo_addid_dep(repo, s->conflicts, dep, marker); break;
    case 3: s->obsoletes = repo_addid_dep(repo, s->obsoletes, dep, marker); break;
    case 4: s->recommends = repo_addid_dep(repo, s->recommends, dep, marker); break;
    case 5: s->suggests = repo_addid_dep(repo, s->suggests, dep, marker); break;
    case 6: s->supplements = repo_addid_dep(repo, s->supplements, dep, marker); break;
    case 7: s->enhances = repo_addid_dep(repo, s->enhances, dep, marker); break;
    }
}

/* Every file path named by a dependency of kind 1..7 of any package (the
 * set pool_addfileprovides looks up), rich dependencies included. */
static void collect_file_deps(Pool *pool, Id dep, Map *seen, Queue *out)
{
  while (ISRELDEP(dep))
    {
      Reldep *rd = GETRELDEP(pool, dep);
      if (rd->flags < 8)
        {
          dep = rd->name;
          continue;
        }
      collect_file_deps(pool, rd->name, seen, out);
      dep = rd->evr;
    }
  if (!dep || MAPTST(seen, dep))
    return;
  MAPSET(seen, dep);
  if (*pool_id2str(pool, dep) == '/')
    queue_push(out, dep);
}

void cosa_file_deps(Pool *pool, Queue *out)
{
  Map seen;
  Id p;
  map_init(&seen, pool->ss.nstrings);
  for (p = 2; p < pool->nsolvables; p++)
    {
      Solvable *s = pool_id2solvable(pool, p);
      Offset lists[7];
      int i;
      if (!s->repo)
        continue;
      lists[0] = s->obsoletes; lists[1] = s->conflicts; lists[2] = s->requires;
      lists[3] = s->recommends; lists[4] = s->suggests; lists[5] = s->supplements;
      lists[6] = s->enhances;
      for (i = 0; i < 7; i++)
        {
          Id *dp;
          if (!lists[i])
            continue;
          for (dp = s->repo->idarraydata + lists[i]; *dp; dp++)
            if (*dp != SOLVABLE_PREREQMARKER && *dp != SOLVABLE_FILEMARKER)
              collect_file_deps(pool, *dp, &seen, out);
        }
    }
  map_free(&seen);
}

/* The provider lists pool_createwhatprovides builds for the `nf` paths in
 * `filedeps`, set as final: every installable solvable that provides the
 * path (its file provides included), once each, in id order. */
static void settle_file_providers(Pool *pool, const Id *filedeps, int nf)
{
  Id *slot, p, id, *pp;
  Queue *providers;
  int i;

  if (!nf)
    return;
  slot = solv_calloc(pool->ss.nstrings, sizeof(Id));
  providers = solv_calloc(nf, sizeof(Queue));
  for (i = 0; i < nf; i++)
    {
      slot[filedeps[i]] = i + 1;
      queue_init(&providers[i]);
    }
  for (p = 2; p < pool->nsolvables; p++)
    {
      Solvable *s = pool_id2solvable(pool, p);
      if (!s->provides || !s->repo || s->repo->disabled)
        continue;
      if (s->repo != pool->installed && !pool_installable(pool, s))
        continue;
      for (pp = s->repo->idarraydata + s->provides; (id = *pp++) != 0; )
        {
          Queue *q;
          while (ISRELDEP(id))
            id = GETRELDEP(pool, id)->name;
          if (id >= pool->ss.nstrings || !slot[id])
            continue;
          q = &providers[slot[id] - 1];
          if (!q->count || q->elements[q->count - 1] != p)
            queue_push(q, p);
        }
    }
  for (i = 0; i < nf; i++)
    {
      /* Straight into the index: no relation was looked up yet, and
       * pool_set_whatprovides would scan every relation per path. */
      pool->whatprovides[filedeps[i]] = pool_queuetowhatprovides(pool, &providers[i]);
      queue_free(&providers[i]);
    }
  solv_free(providers);
  solv_free(slot);
}

/* Packages not in `excluded` are considered; then the provides index.
 * `filedeps` are the file paths some dependency names, whose providers the
 * application added from the complete filelists: as after dnf's
 * pool_addfileprovides over complete filelists, their provider lists are
 * final. (The pool never saw pool_addfileprovides, so createwhatprovides
 * leaves every path to a lazy search that reads each package's primary
 * file list again, on the first lookup of each path.) */
void cosa_finish_pool(Pool *pool, const Id *excluded, int n, const Id *filedeps, int nf)
{
  int i;
  if (!pool->considered)
    {
      pool->considered = calloc(1, sizeof(Map));
      map_init(pool->considered, pool->nsolvables);
    }
  map_setall(pool->considered);
  for (i = 0; i < n; i++)
    MAPCLR(pool->considered, excluded[i]);
  pool_createwhatprovides(pool);
  settle_file_providers(pool, filedeps, nf);
}

static int considered(Pool *pool, Id p)
{
  return p > 1 && (!pool->considered || MAPTST(pool->considered, p));
}

/* Considered packages providing `dep`, by id. */
void cosa_whatprovides(Pool *pool, Id dep, Queue *out)
{
  Id p, pp;
  FOR_PROVIDES(p, pp, dep)
    if (considered(pool, p))
      queue_push(out, p);
}

/* Considered packages that obsolete anything, by id. */
void cosa_obsoleting(Pool *pool, Queue *out)
{
  Id p;
  for (p = 2; p < pool->nsolvables; p++)
    {
      Solvable *s = pool_id2solvable(pool, p);
      if (s->repo && s->obsoletes && considered(pool, p))
        queue_push(out, p);
    }
}

/* The packages of `candidates` (from cosa_obsoleting) whose Obsoletes match
 * (by name and EVR) one of the `n` packages in `targets`, by id: libdnf's
 * HY_PKG_OBSOLETES filter. */
void cosa_obsoleters(Pool *pool, const Id *targets, int n,
                     const Id *candidates, int ncandidates, Queue *out)
{
  Map target;
  int i, c;
  map_init(&target, pool->nsolvables);
  for (i = 0; i < n; i++)
    MAPSET(&target, targets[i]);
  for (c = 0; c < ncandidates; c++)
    {
      Id p = candidates[c];
      Solvable *s = pool_id2solvable(pool, p);
      Id *obsp, obs;
      int found = 0;
      for (obsp = s->repo->idarraydata + s->obsoletes; !found && (obs = *obsp) != 0; obsp++)
        {
          Id r, rr;
          FOR_PROVIDES(r, rr, obs)
            if (MAPTST(&target, r) && pool_match_nevr(pool, pool_id2solvable(pool, r), obs))
              {
                found = 1;
                break;
              }
        }
      if (found)
        queue_push(out, p);
    }
  map_free(&target);
}

Id cosa_one_of(Pool *pool, const Id *ids, int n)
{
  Queue q;
  Id what;
  queue_init(&q);
  queue_insertn(&q, 0, n, ids);
  what = pool_queuetowhatprovides(pool, &q);
  queue_free(&q);
  return what;
}

/* Solve `jobs` (pairs) with the flags dnf's goal sets for `dnf install`. */
Solver *cosa_solve(Pool *pool, const Id *jobs, int njobs, int ignore_weak, int *nproblems)
{
  Solver *solv = solver_create(pool);
  Queue job;
  solver_set_flag(solv, SOLVER_FLAG_ALLOW_VENDORCHANGE, 1);
  solver_set_flag(solv, SOLVER_FLAG_DUP_ALLOW_VENDORCHANGE, 1);
  solver_set_flag(solv, SOLVER_FLAG_KEEP_ORPHANS, 1);
  solver_set_flag(solv, SOLVER_FLAG_BEST_OBEY_POLICY, 1);
  solver_set_flag(solv, SOLVER_FLAG_YUM_OBSOLETES, 1);
  solver_set_flag(solv, SOLVER_FLAG_ALLOW_DOWNGRADE, 1);
  /* libsolv's default for rpm; dnf --debugsolver lists it. */
  solver_set_flag(solv, SOLVER_FLAG_KEEP_EXPLICIT_OBSOLETES, 1);
  if (ignore_weak)
    solver_set_flag(solv, SOLVER_FLAG_IGNORE_RECOMMENDED, 1);
  queue_init(&job);
  queue_insertn(&job, 0, njobs, jobs);
  *nproblems = solver_solve(solv, &job);
  queue_free(&job);
  return solv;
}

/* Write libsolv's testcase (pool, jobs, flags, result) into `dir`, as
 * `dnf --debugsolver` writes dnf's: the two can be compared line by line
 * and replayed with libsolv's testsolv. Non-zero on success. */
int cosa_write_testcase(Solver *solv, const char *dir)
{
  return testcase_write(solv, dir, TESTCASE_RESULT_TRANSACTION | TESTCASE_RESULT_PROBLEMS, 0, 0);
}

/* Is `dep` met by the packages in `in`, as rpm's transaction check reads
 * it? Rich dependencies by their operators (and, or, if/unless with an
 * optional else); `with`, `without`, versioned and plain ones by a package
 * of the set among libsolv's providers (which intersect for `with`). */
static int met_by(Pool *pool, Map *in, Id dep)
{
  Id p, pp;
  if (ISRELDEP(dep))
    {
      Reldep *rd = GETRELDEP(pool, dep);
      switch (rd->flags)
        {
        case REL_AND:
          return met_by(pool, in, rd->name) && met_by(pool, in, rd->evr);
        case REL_OR:
          return met_by(pool, in, rd->name) || met_by(pool, in, rd->evr);
        case REL_COND:
        case REL_UNLESS:
          {
            /* As rpm reads them: (A if B) is A or not B; (A if B else C)
             * is A when B is met, else C; (A unless B) is A and not B;
             * (A unless B else C) is C when B is met, else A. */
            Id cond = rd->evr, otherwise = 0;
            int b;
            if (ISRELDEP(cond) && GETRELDEP(pool, cond)->flags == REL_ELSE)
              {
                otherwise = GETRELDEP(pool, cond)->evr;
                cond = GETRELDEP(pool, cond)->name;
              }
            b = met_by(pool, in, cond);
            if (rd->flags == REL_COND)
              return b ? met_by(pool, in, rd->name) : (!otherwise || met_by(pool, in, otherwise));
            if (b)
              return otherwise && met_by(pool, in, otherwise);
            return met_by(pool, in, rd->name);
          }
        default:
          break;
        }
    }
  FOR_PROVIDES(p, pp, dep)
    if (MAPTST(in, p))
      return 1;
  return 0;
}

/* rpm's transaction check on `set` (solvable ids): for each Requires that
 * the set does not meet, the pair (package, dependency) goes to `out`.
 * rpmlib() requirements are rpm's own and always met. */
void cosa_unmet(Pool *pool, const Id *set, int n, Queue *out)
{
  Map in;
  int i;
  map_init(&in, pool->nsolvables);
  for (i = 0; i < n; i++)
    MAPSET(&in, set[i]);
  for (i = 0; i < n; i++)
    {
      Solvable *s = pool_id2solvable(pool, set[i]);
      Id *dp, dep;
      if (!s->requires)
        continue;
      for (dp = s->repo->idarraydata + s->requires; (dep = *dp) != 0; dp++)
        {
          Id name = dep;
          if (dep == SOLVABLE_PREREQMARKER)
            continue;
          while (ISRELDEP(name) && GETRELDEP(pool, name)->flags < 8)
            name = GETRELDEP(pool, name)->name;
          if (!ISRELDEP(name) && !strncmp(pool_id2str(pool, name), "rpmlib(", 7))
            continue;
          if (!met_by(pool, &in, dep))
            queue_push2(out, set[i], dep);
        }
    }
  map_free(&in);
}

/* The packages the solution installs, by id. */
void cosa_solver_installs(Solver *solv, Queue *out)
{
  Pool *pool = solv->pool;
  Queue dq;
  int i;
  queue_init(&dq);
  solver_get_decisionqueue(solv, &dq);
  for (i = 0; i < dq.count; i++)
    {
      Id p = dq.elements[i];
      if (p > 1 && pool_id2solvable(pool, p)->repo != pool->installed)
        queue_push(out, p);
    }
  queue_free(&dq);
}

/* Every rule of every problem as one line each, problems separated by an
 * empty line. malloc'd; the caller frees it with cosa_free. */
char *cosa_solver_problems(Solver *solv)
{
  unsigned int np = solver_problem_count(solv), pi;
  size_t len = 0, cap = 256;
  char *buf = malloc(cap);
  Queue rules;
  queue_init(&rules);
  buf[0] = 0;
  for (pi = 1; pi <= np; pi++)
    {
      int i;
      queue_empty(&rules);
      solver_findallproblemrules(solv, pi, &rules);
      for (i = 0; i < rules.count; i++)
        {
          /* Every reason a rule has (one rule can stand for several
           * unmet requires of one package), as libdnf lists them. */
          Queue infos;
          int j;
          queue_init(&infos);
          solver_allruleinfos(solv, rules.elements[i], &infos);
          for (j = 0; j + 3 < infos.count; j += 4)
            {
              const char *line = solver_problemruleinfo2str(solv, infos.elements[j],
                  infos.elements[j + 1], infos.elements[j + 2], infos.elements[j + 3]);
              size_t l = strlen(line);
              if (len + l + 3 > cap)
                {
                  cap = (len + l + 3) * 2;
                  buf = realloc(buf, cap);
                }
              memcpy(buf + len, line, l);
              len += l;
              buf[len++] = '\n';
              buf[len] = 0;
            }
          queue_free(&infos);
        }
      if (pi < np)
        {
          buf[len++] = '\n';
          buf[len] = 0;
        }
    }
  queue_free(&rules);
  return buf;
}

void cosa_solver_free(Solver *solv)
{
  solver_free(solv);
}

/* `name-evr.arch` (pool_solvid2str is inline in pool.h). */
const char *cosa_solvid2str(Pool *pool, Id p)
{
  return pool_solvid2str(pool, p);
}

void cosa_free(void *p)
{
  free(p);
}

/* Constants from libsolv's headers, so the Rust side never guesses them. */
Id cosa_prereq_marker(void) { return SOLVABLE_PREREQMARKER; }
Id cosa_file_marker(void) { return SOLVABLE_FILEMARKER; }
Id cosa_job_install_one_of(void)
{
  return SOLVER_INSTALL | SOLVER_SOLVABLE_ONE_OF | SOLVER_SETARCH | SOLVER_SETEVR;
}
int cosa_rel_flag(int which)
{
  switch (which)
    {
    case 0: return REL_GT;
    case 1: return REL_EQ;
    case 2: return REL_LT;
    }
  return 0;
}
