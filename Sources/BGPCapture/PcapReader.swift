import BGPWire
