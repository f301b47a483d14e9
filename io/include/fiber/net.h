// Sockets for fibers, all of them: include this, or only the header of the
// concept you use.
//
//   fiber/address.h  Address (IPv4, IPv6), resolve(), resolver_category()
//   fiber/socket.h   Socket (what every socket shares: fd, deadlines, cancel,
//                    close, bind_context), Deadline, ContextBinding, ListenOptions
//   fiber/stream.h   Stream: reads and writes of a connected byte stream
//   fiber/tcp.h      TcpListener, TcpStream (connect, dial)
//   fiber/unix.h     UnixListener, UnixStream (Unix-domain streams)
//   fiber/udp.h      UdpSocket
//
// Files are in fiber/file.h.
#pragma once

#include "fiber/address.h"
#include "fiber/socket.h"
#include "fiber/stream.h"
#include "fiber/tcp.h"
#include "fiber/udp.h"
#include "fiber/unix.h"
