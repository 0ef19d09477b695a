// Package pcap wraps a link and records every frame written to it and every frame it
// delivers in a libpcap capture file (the classic format read by tcpdump and Wireshark:
// https://www.tcpdump.org/manpages/pcap-savefile.5.html), LINKTYPE_ETHERNET for Ethernet
// links and LINKTYPE_RAW for bare IP.
//
// Layer: link (imports link, pbuf, clock). A Link is safe for concurrent use: records are
// written under a mutex into one reusable buffer, so capturing allocates nothing per frame.
package pcap
