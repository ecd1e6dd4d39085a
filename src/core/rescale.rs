//! The in-place rescale state machine (pure transitions): which TaskManager count to
//! report to KEDA while a rescale is in flight, and when a rescale is complete, timed out
//! or broken by a failover.
