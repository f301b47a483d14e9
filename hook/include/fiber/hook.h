// The libc hooks (libfiber_hook, hook/README.md): blocking libc calls made in
// a fiber park the fiber, not its core, so client libraries written for
// blocking sockets (hiredis, libcurl's easy API, ...) run unmodified on fibers.
// Linking the library (or LD_PRELOADing it) is all it takes; this header only
// lets a program turn the hooks off and on.
//
// Threading: thread-safe: any thread.
//
// Example:
//   fiber::hook::set_enabled(false);   // from here on, every call is libc's own
#pragma once

namespace fiber::hook {

// set_enabled() turns the hooks on or off for the whole process. Off, every
// hooked call is libc's own (fds the hooks made non-blocking kernel-side still
// block as their user expects). On by default; FIBER_HOOK=0 in the
// environment, read once at load, starts with them off. They are always off
// in the child of a fork().
void set_enabled(bool on);

// enabled() says whether the hooks are on.
bool enabled();

}  // namespace fiber::hook
