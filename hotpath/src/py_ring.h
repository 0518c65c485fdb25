/*
 * py_ring.h - Python's per-message calls into the rings (hotpath/ring.py, hotpath/bcast.py): `const char *`
 * lets cffi pass a bytes object without a copy or a from_buffer call (about 0.1 us each); the rings
 * themselves take `const void *`.
 */
#ifndef PY_RING_H
#define PY_RING_H

#include "pt_bcast.h"
#include "pt_ring.h"

/* pt_ring_try_push of one 64-byte message. */
int py_ring_push(pt_ring_t *r, const char *msg64);
/* pt_bcast_publish of one 64-byte message. */
int py_bcast_publish(pt_bcast_t *b, const char *msg64);

#endif
