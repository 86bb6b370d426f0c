module mproc/bench

go 1.26.0

require (
	github.com/vmihailenco/msgpack/v5 v5.4.1
	mproc v0.0.0
)

require (
	github.com/fxamacker/cbor/v2 v2.10.0 // indirect
	github.com/vmihailenco/tagparser/v2 v2.0.0 // indirect
	github.com/x448/float16 v0.8.4 // indirect
	golang.org/x/sys v0.49.0 // indirect
)

replace mproc => ../
