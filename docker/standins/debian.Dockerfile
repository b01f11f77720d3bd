# Stand-in Debian base (scripts/docker/base-images.sh): the debootstrap'ed
# root file system, imported as ROOTFS_IMAGE, brought up to date. The other
# stand-ins are built from it.
ARG ROOTFS_IMAGE
FROM ${ROOTFS_IMAGE}
ENV LANG=C.UTF-8
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get upgrade -y --no-install-recommends \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
CMD ["bash"]
