"""Volume plugins: each sets up one kind of volume source on this node and says where it is.

They are plain synchronous functions (the service runs them in a worker thread) so that they
can be tested on their own; the persistentVolumeClaim plugin resolves the claim through the
store and then hands the volume's source to hostpath, local or nfs.
"""
