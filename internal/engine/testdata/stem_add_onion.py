#!/usr/bin/python3
"""ADD_ONION and DEL_ONION through stem (Debian python3-stem), driven by
addonion_integration_test.go over stdin/stdout, one line per step:

  -> SERVICE <id> <key type> <key>     after create_ephemeral_hidden_service(await_publication=True)
  <- DEL
  -> REMOVED <True|False> <again: True|False> current=<GETINFO onions/current>
  <- OWN
  -> OWNED <id> DETACHED <id> COLLISION refused   a second controller added both
                                       (and the key again), then closed
  <- CHECK
  -> DETACHEDLIST <GETINFO onions/detached> REMOVED <True|False>
"""
import sys
import time

import stem.control

port, target = int(sys.argv[1]), int(sys.argv[2])


def controller():
    c = stem.control.Controller.from_port(port=port)
    c.authenticate()
    return c


c = controller()
start = time.time()
r = c.create_ephemeral_hidden_service({80: target}, key_type='NEW', key_content='ED25519-V3',
                                      await_publication=True, timeout=120)
print('SERVICE', r.service_id, r.private_key_type, r.private_key, '%.3f' % (time.time() - start), flush=True)

sys.stdin.readline()
removed = c.remove_ephemeral_hidden_service(r.service_id)
again = c.remove_ephemeral_hidden_service(r.service_id)
print('REMOVED', removed, again, 'current=' + c.get_info('onions/current'), flush=True)

sys.stdin.readline()
# The key of the removed service is free again: a detached service with it
# has the same address. The other service goes with its controller.
c2 = controller()
owned = c2.create_ephemeral_hidden_service(81, discard_key=True)
det = c2.create_ephemeral_hidden_service({82: target}, key_type=r.private_key_type, key_content=r.private_key,
                                         detached=True)
# The same key once more: 550 Onion address collision.
try:
    c2.create_ephemeral_hidden_service(83, key_type=r.private_key_type, key_content=r.private_key)
    collision = 'accepted'
except stem.ControllerError as e:
    collision = 'refused' if 'Onion address collision' in str(e) else repr(str(e))
c2.close()
print('OWNED', owned.service_id, 'DETACHED', det.service_id, 'COLLISION', collision, flush=True)

sys.stdin.readline()
c3 = controller()
listed = c3.get_info('onions/detached')
print('DETACHEDLIST', listed, 'REMOVED', c3.remove_ephemeral_hidden_service(det.service_id), flush=True)
c3.close()
c.close()
