package mproc

// SignalsCaught is closed once this child process catches SIGTERM and
// SIGINT, which it starts doing just after it tells its parent it is
// ready.
func SignalsCaught() <-chan struct{} { return signalsCaught }
