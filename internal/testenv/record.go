package testenv

import (
	"encoding/binary"
	"hash/crc32"
)

// RecordSize is the bytes of a torture test's self-verifying record.
const RecordSize = 64

// Record returns record seq: the number, the same in every word after it,
// and a CRC-32 of the rest in the last four bytes.
func Record(seq uint64) []byte {
	b := make([]byte, RecordSize)
	for i := 0; i+8 <= RecordSize-4; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], seq)
	}
	binary.LittleEndian.PutUint32(b[RecordSize-4:], crc32.ChecksumIEEE(b[:RecordSize-4]))
	return b
}

// CheckRecord returns the sequence number of a record, or false if it is
// torn (its length or checksum wrong).
func CheckRecord(b []byte) (uint64, bool) {
	if len(b) != RecordSize || binary.LittleEndian.Uint32(b[RecordSize-4:]) != crc32.ChecksumIEEE(b[:RecordSize-4]) {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b), true
}
