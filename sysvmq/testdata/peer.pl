# A Perl peer on a System V message queue (Perl has msgrcv and msgsnd
# built in; Python's standard library has no System V queues).
# Usage: perl peer.pl ID. It receives one message of type 1 and answers
# with type 2: the text in upper case and its pid; then it sends a binary
# message of type 3.
use strict;
use warnings;

my $id = shift @ARGV;
my $buf;
defined(msgrcv($id, $buf, 8192, 1, 0)) or die "msgrcv: $!\n";
my ($type, $text) = unpack("l! a*", $buf);
msgsnd($id, pack("l! a*", 2, uc($text) . " from perl $$"), 0) or die "msgsnd: $!\n";
msgsnd($id, pack("l! a*", 3, "\x00\x01\xfe\xff\x00"), 0) or die "msgsnd: $!\n";
