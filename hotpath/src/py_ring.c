/*
 * py_ring.c - the rings' calls for Python (py_ring.h): the same calls with a parameter type cffi passes
 * bytes to directly.
 */
#include "py_ring.h"

int py_ring_push(pt_ring_t *r, const char *msg64) { return pt_ring_try_push(r, msg64); }

int py_bcast_publish(pt_bcast_t *b, const char *msg64) { return pt_bcast_publish(b, msg64); }
