/*
 * lib/csv: membership in a comma-separated list ("a,b, c"), the one
 * helper behind model lists, pin lists and category lists.
 */
#ifndef SWB_CSV_H
#define SWB_CSV_H

/* Is item one of list's entries?  Blanks around entries are ignored. */
int csv_has(const char *list, const char *item);

#endif
