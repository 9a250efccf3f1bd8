/* test_rm_tree.h - removing a folder tree, for the tests (test_util.h) and the fuzz targets (fuzz_util.h),
 * which share no library code. */
#ifndef SDC_TEST_RM_TREE_H
#define SDC_TEST_RM_TREE_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Removes path and, for a folder, everything below it; symbolic links are removed, never followed. */
static inline void test_rm_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }
    DIR *d = opendir(path);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        const size_t n = strlen(path) + strlen(e->d_name) + 2;
        char *c = malloc(n);
        if (!c) break;
        snprintf(c, n, "%s/%s", path, e->d_name);
        test_rm_tree(c);
        free(c);
    }
    if (d) closedir(d);
    rmdir(path);
}

#endif
