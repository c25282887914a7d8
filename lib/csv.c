/*
 * lib/csv: comma-separated list membership.
 */
#include "lib/csv.h"

#include <string.h>

int
csv_has(const char *list, const char *item)
{
	size_t want = strlen(item);
	const char *p = list;

	while (*p != '\0') {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		const char *q = p;
		while (n > 0 && (*q == ' ' || *q == '\t')) {
			q++;
			n--;
		}
		while (n > 0 && (q[n - 1] == ' ' || q[n - 1] == '\t'))
			n--;
		if (n == want && strncmp(q, item, n) == 0)
			return 1;
		if (end == NULL)
			break;
		p = end + 1;
	}
	return 0;
}
