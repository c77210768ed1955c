// SPDX-License-Identifier: MIT
// Core layer: batch moves between spans and CPU caches.
#include "central_list.h"

#include "page_heap.h"
#include "page_map.h"
#include "valgrind.h"

namespace rs {

CentralList g_central[kNumClasses];

namespace {

uintptr_t g_secret;

/// A free object's link as stored in its first word.
uintptr_t encode(void* next, void* at) {
  return addr(next) ^ addr(at) ^ g_secret;
}

void* decode(uintptr_t stored, void* at) {
  return ptr_at<void>(stored ^ addr(at) ^ g_secret);
}

}  // namespace

void set_free_list_secret(uintptr_t secret) {
  g_secret = secret | 1;
}

void CentralList::link(Span* span) {
  span->prev = nullptr;
  span->next = nonempty_;
  if (nonempty_ != nullptr)
    nonempty_->prev = span;
  nonempty_ = span;
  span->on_list = true;
}

void CentralList::unlink(Span* span) {
  if (span->prev != nullptr) {
    span->prev->next = span->next;
  } else {
    nonempty_ = span->next;
  }
  if (span->next != nullptr)
    span->next->prev = span->prev;
  span->next = span->prev = nullptr;
  span->on_list = false;
}

bool CentralList::handed_out(const Span* span, const void* p) const {
  uintptr_t a = addr(p);
  if (a < span->start() || a >= span->bump)
    return false;  // outside the span, or never handed out
  uintptr_t off = a - span->start();
  return class_divide(cls_, off) * class_size(cls_) == off;
}

void* CentralList::pop(Span* span) {
  const ClassInfo& ci = class_info(cls_);
  void* obj = span->free_list;
  if (obj != nullptr) {
    vg::make_defined(obj, sizeof(uintptr_t));  // our link in a freed block
    void* next = decode(*static_cast<uintptr_t*>(obj), obj);
    vg::make_noaccess(obj, sizeof(uintptr_t));
    if (next != nullptr && !handed_out(span, next)) {
      fatal_pointer("malloc (free list corrupted after use-after-free?)", obj);
    }
    span->free_list = next;
  } else {
    obj = ptr_at<void>(span->bump);
    span->bump += ci.size;
  }
  span->allocated++;
  return obj;
}

Span* CentralList::new_span() {
  const ClassInfo& ci = class_info(cls_);
  Span* span = g_page_heap.allocate(ci.span_pages, SpanState::kSmall, cls_);
  if (span == nullptr)
    return nullptr;
  span->bump = span->start();
  span->free_list = nullptr;
  span->allocated = 0;
  return span;
}

int CentralList::remove_batch(void** out, int n) {
  const ClassInfo& ci = class_info(cls_);
  int got = 0;
  lock_.lock();
  while (got < n) {
    Span* span = nonempty_;
    if (span == nullptr) {
      lock_.unlock();  // never hold a central lock while taking the heap's
      span = new_span();
      lock_.lock();
      if (span == nullptr)
        break;
      link(span);
      stats_.spans++;
      stats_.capacity += ci.objects;
    }
    while (got < n && span->allocated < ci.objects)
      out[got++] = pop(span);
    if (span->allocated == ci.objects)
      unlink(span);
  }
  stats_.allocated += static_cast<size_t>(got);
  lock_.unlock();
  return got;
}

void CentralList::insert_batch(void* const* objs, int n) {
  const ClassInfo& ci = class_info(cls_);
  Span* empty[64];
  int num_empty = 0;
  int i = 0;
  while (i < n) {
    lock_.lock();
    for (; i < n && num_empty < 64; i++) {
      void* obj = objs[i];
      Span* span = g_page_map.span_of(obj);
      // Catches foreign and interior pointers, and the double frees that
      // are cheap to see: an empty span, or the object freed last.
      if (span == nullptr || span->state != SpanState::kSmall ||
          span->size_class != cls_ || !handed_out(span, obj) ||
          span->allocated == 0 || span->free_list == obj) {
        lock_.unlock();
        fatal_pointer("free", obj);
      }
      vg::make_undefined(obj, sizeof(uintptr_t));  // freed: ours to write
      *static_cast<uintptr_t*>(obj) = encode(span->free_list, obj);
      vg::make_noaccess(obj, sizeof(uintptr_t));
      span->free_list = obj;
      span->allocated--;
      stats_.allocated--;
      if (span->allocated == 0) {
        if (span->on_list)
          unlink(span);
        stats_.spans--;
        stats_.capacity -= ci.objects;
        empty[num_empty++] = span;
      } else if (!span->on_list) {
        link(span);
      }
    }
    lock_.unlock();
    for (int k = 0; k < num_empty; k++)
      g_page_heap.free(empty[k]);
    num_empty = 0;
  }
}

CentralStats CentralList::stats() {
  LockGuard guard(lock_);
  return stats_;
}

}  // namespace rs
