// A deliberate layering violation for tools/ci/layers.sh: the scheduler layer
// calling a function of the driver layer (declared by hand, so that it
// compiles). Compiled into fiber_sched only with -DFIBER_LAYER_PROBE=symbol;
// fiber_sched_layer_check must then fail to link.
namespace fiber::detail {
int socket_flags();
int layering_probe() { return socket_flags(); }
}  // namespace fiber::detail
