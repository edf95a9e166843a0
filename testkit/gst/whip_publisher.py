#!/usr/bin/env python3
"""A non-JS WHIP publisher: GStreamer webrtcbin with bundle-policy max-bundle
(its offer has a bundle-only audio m-line), x264 + Opus test sources.

usage: whip_publisher.py <whip-url> <bearer-token> <seconds>
Prints "STATUS <http status>" after the POST, "CONNECTED" once ICE connects,
and exits 0 after <seconds> of streaming (sending DELETE first).
"""
import sys
import urllib.request
import urllib.error

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

URL, TOKEN, SECONDS = sys.argv[1], sys.argv[2], float(sys.argv[3])
Gst.init(None)

PIPELINE = (
    "webrtcbin name=send bundle-policy=max-bundle "
    "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! "
    "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bframes=0 ! "
    "video/x-h264,profile=constrained-baseline ! rtph264pay config-interval=-1 aggregate-mode=zero-latency ! "
    "application/x-rtp,media=video,encoding-name=H264,payload=102 ! send. "
    "audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! opusenc ! rtpopuspay ! "
    "application/x-rtp,media=audio,encoding-name=OPUS,payload=111 ! send."
)

pipe = Gst.parse_launch(PIPELINE)
webrtc = pipe.get_by_name("send")
loop = GLib.MainLoop()
location = None
connected = [False]


def fail(msg):
    print("ERROR", msg, flush=True)
    loop.quit()
    sys.exit(2)


def request(method, url, body=None, ctype=None):
    headers = {"Authorization": "Bearer " + TOKEN}
    if ctype:
        headers["Content-Type"] = ctype
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=8) as res:
            return res.status, res.headers, res.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def on_offer(promise, _):
    global location
    reply = promise.get_reply()
    offer = reply.get_value("offer") if reply.has_field("offer") else None
    if offer is None:
        fail("create-offer failed: %s" % reply.to_string())
    webrtc.emit("set-local-description", offer, Gst.Promise.new())
    sdp = offer.sdp.as_text()
    sdp = "\r\n".join(l for l in sdp.split("\r\n") if not l.startswith("a=candidate"))
    status, headers, body = request("POST", URL, sdp.encode(), "application/sdp")
    print("STATUS", status, flush=True)
    print("BUNDLE_ONLY", "a=bundle-only" in sdp, flush=True)
    if status != 201:
        fail(body)
    location = urllib.parse.urljoin(URL, headers["Location"])
    res, msg = GstSdp.SDPMessage.new_from_text(body)
    answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, msg)
    webrtc.emit("set-remote-description", answer, Gst.Promise.new())
    # webrtcbin does not take candidates from the remote SDP: add them by hand (mline 0 carries the bundle).
    for line in body.split("\r\n"):
        if line.startswith("a=candidate:") and " udp " in line:
            webrtc.emit("add-ice-candidate", 0, line[2:])


def on_negotiation_needed(element):
    element.emit("create-offer", None, Gst.Promise.new_with_change_func(on_offer, None))


def on_ice_state(element, _pspec):
    state = element.get_property("ice-connection-state")
    if state in (GstWebRTC.WebRTCICEConnectionState.CONNECTED, GstWebRTC.WebRTCICEConnectionState.COMPLETED):
        if not connected[0]:
            connected[0] = True
            print("CONNECTED", flush=True)
    if state == GstWebRTC.WebRTCICEConnectionState.FAILED:
        fail("ICE failed")


def stop():
    if location:
        status, _, _ = request("DELETE", location)
        print("DELETE", status, flush=True)
    pipe.set_state(Gst.State.NULL)
    loop.quit()
    return False


import urllib.parse  # noqa: E402

webrtc.connect("on-negotiation-needed", on_negotiation_needed)
webrtc.connect("notify::ice-connection-state", on_ice_state)
pipe.set_state(Gst.State.PLAYING)
GLib.timeout_add(int(SECONDS * 1000), stop)
loop.run()
