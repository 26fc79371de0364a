/* hub - the streamer's bounded fan-out (see the header). */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "hub.h"
#include "sb_mem.h"
#include "sb_banned.h"

struct sb_hub {
    pthread_mutex_t lock;
    pthread_cond_t changed; // a publish or the close
    sb_hub_event_t *ring;   // capacity slots; event seq lives in slot seq % capacity
    size_t capacity;
    uint64_t head;  // the next sequence number to publish (first is 1)
    uint64_t first; // the oldest sequence number still in the ring
    int closed;
};

sb_hub_t *
sb_hub_new(size_t capacity)
{
    assert(capacity >= 1);
    sb_hub_t *self = sb_xcalloc(1, sizeof *self);
    pthread_mutex_init(&self->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); // waits immune to clock changes
    pthread_cond_init(&self->changed, &attr);
    pthread_condattr_destroy(&attr);
    self->ring = sb_xcalloc(capacity, sizeof *self->ring);
    self->capacity = capacity;
    self->head = self->first = 1;
    return self;
}

void
sb_hub_event_release(sb_hub_event_t *ev)
{
    if (ev == NULL)
        return;
    free(ev->channel);
    free(ev->data);
    memset(ev, 0, sizeof *ev);
}

void
sb_hub_destroy(sb_hub_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    sb_hub_t *self = *self_p;
    for (size_t i = 0; i < self->capacity; i++)
        sb_hub_event_release(&self->ring[i]);
    free(self->ring);
    pthread_cond_destroy(&self->changed);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

uint64_t
sb_hub_publish(sb_hub_t *self, const char *channel, const char *data)
{
    pthread_mutex_lock(&self->lock);
    uint64_t seq = self->head++;
    sb_hub_event_t *slot = &self->ring[seq % self->capacity];
    sb_hub_event_release(slot); // the oldest event, when the ring is full
    slot->seq = seq;
    slot->channel = sb_xstrdup(channel);
    slot->data = sb_xstrdup(data ? data : "");
    if (self->head - self->first > self->capacity)
        self->first = self->head - self->capacity;
    pthread_cond_broadcast(&self->changed);
    pthread_mutex_unlock(&self->lock);
    return seq;
}

uint64_t
sb_hub_head(sb_hub_t *self)
{
    pthread_mutex_lock(&self->lock);
    uint64_t head = self->head;
    pthread_mutex_unlock(&self->lock);
    return head;
}

sb_hub_result_t
sb_hub_wait(sb_hub_t *self, uint64_t *next, int64_t timeout_ms, sb_hub_event_t *out)
{
    memset(out, 0, sizeof *out);
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)(timeout_ms / 1000);
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    sb_hub_result_t rc;
    pthread_mutex_lock(&self->lock);
    for (;;) {
        if (self->closed) {
            rc = SB_HUB_CLOSED;
            break;
        }
        if (*next < self->first) { // the ring moved past this reader
            *next = self->first;
            rc = SB_HUB_LAGGED;
            break;
        }
        if (*next < self->head) {
            const sb_hub_event_t *ev = &self->ring[*next % self->capacity];
            out->seq = ev->seq;
            out->channel = sb_xstrdup(ev->channel);
            out->data = sb_xstrdup(ev->data);
            (*next)++;
            rc = SB_HUB_EVENT;
            break;
        }
        if (pthread_cond_timedwait(&self->changed, &self->lock, &deadline) == ETIMEDOUT) {
            rc = SB_HUB_TIMEOUT;
            break;
        }
    }
    pthread_mutex_unlock(&self->lock);
    return rc;
}

void
sb_hub_close(sb_hub_t *self)
{
    pthread_mutex_lock(&self->lock);
    self->closed = 1;
    pthread_cond_broadcast(&self->changed);
    pthread_mutex_unlock(&self->lock);
}
