// Package manager serves shared Python-style objects — dicts, lists,
// namespaces, queues, values, locks, events, conditions, barriers — from
// one process to clients in other processes, over Unix or TCP sockets with
// an authkey: Python's multiprocessing.managers, in Go, speaking its wire
// protocol so that Go and unmodified Python programs can be either side.
//
//	srv, err := manager.Start(ctx, manager.StartOptions{}) // a server in a child process
//	c, err := manager.Dial(ctx, srv.Network, srv.Addr, srv.Key, nil)
//	d, err := manager.NewDict[string, int](ctx, c)
//	err = d.Set(ctx, "visits", 1)
//
// and in Python, against the same server:
//
//	class M(SyncManager): pass
//	m = M(address=path, authkey=key); m.connect()
//	d = m.dict(); d['visits'] = 2
//
// # Protocol
//
// Every message is a pickle (package mproc/pickle) in a frame of Python's
// multiprocessing.connection, after its authkey handshake (mproc.Listen
// and mproc.Dial). A control call — create, incref, decref, dummy,
// shutdown — is one request and one reply on a connection of its own: the
// request (None, name, args, kwds), the reply ('#RETURN', value) or
// ('#TRACEBACK', text). A connection that calls accept_connection then
// carries method calls, one at a time: (ident, method, args, kwds) →
// ('#RETURN', value), ('#ERROR', exception) when the method raised (the
// exception is a pickle.Object naming its Python class: queue.Empty,
// KeyError, ...), or ('#TRACEBACK', text) for an unknown object or a
// method the object does not expose.
//
// A method that returns a new object on the server (Python's
// method_to_typeid: dict.__iter__ returns an Iterator) replies
// ('#PROXY', (exposed, Token)); the Go client's Call returns a *Ref to
// it, holding the one reference the server took for the caller.
//
// # The shared-memory path
//
// A Go client of a Go server over a Unix socket asks, on each connection
// it opens for method calls, for mproc_accept_shm instead of
// accept_connection. The server creates two shared-memory queues (0600),
// replies with their names, and removes the names once the client has
// opened them; the calls then travel through the queues, the same pickles
// in chunks of up to 64 KiB, and the socket stays open and silent beside
// them so that each side learns at once when the other goes. A Python
// server answers the unknown request with '#TRACEBACK', and the client
// keeps to the socket from then on; DialOptions.SocketOnly does the same
// by choice. Over TCP the socket carries everything.
//
// # Objects and references
//
// The server holds each object under an id with a reference count:
// create counts one, incref and decref move it, and the object is freed
// when it reaches zero. A server's objects are shared by every client, and
// each call runs on the goroutine serving its connection: a blocking call
// (Queue.get, Lock.acquire) blocks that connection only.
//
// Locks, semaphores and conditions are held by the connection that
// acquired them: when that connection closes (its client died, or closed
// it), what it held is released, so a dead client never leaves a lock held
// for ever (Python's server keeps it held). A call blocked in the server
// (Queue.get, Lock.acquire) ends when its connection does, so a client
// that died waiting is not handed the next item or the lock.
//
// References are counted per client process over a Unix socket (the
// kernel names the peer): when a process dies, its references are dropped
// within a quarter of a second. Over TCP the server cannot know the
// process, and, as in Python, a reference stays until it is decref'd.
//
// # Types
//
// The built-in types are those of Python's SyncManager — dict, list,
// Namespace, Value, Array, Queue, JoinableQueue, Lock, RLock, Semaphore,
// BoundedSemaphore, Condition, Event, Barrier — with the methods its
// proxies call. A program adds its own with RegisterType, at package
// level: a Type is a name and a constructor of an Object, a table of
// methods by name; Typed makes a method of a typed Go function. A
// Python client reaches them with BaseManager.register(name).
//
// # Safety
//
// Nothing from the network is ever executed or looked up by name: the
// pickle decoder builds plain values and, for the few Python classes the
// protocol needs (exceptions, slice, Token), pickle.Object descriptions;
// method names are looked up in each type's fixed table of Go functions.
package manager
