"""GET /v1/products/{id}, its image, and products similar to it."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse

from app.deps import IndexDep, ServiceDep
from app.errors import ProductNotFoundError
from app.filters import merge_query_filters
from app.openapi import errors
from app.protocols import Product, SearchIndex
from app.schemas import DEFAULT_K, MAX_K, ProductPublic, SearchResponse, Target
from app.search import image_url

router = APIRouter(prefix="/v1/products", tags=["products"], responses=errors(404, 422, 503))

# Catalogue photos as the service sends them (by file extension).
PHOTO_TYPES: dict[str, dict] = {
    t: {} for t in ("image/jpeg", "image/png", "image/webp", "image/gif")
}

# Product photos change only with a new index, which gives them new ETags.
IMAGE_CACHE_CONTROL = "public, max-age=86400"


def _find(index: SearchIndex, product_id: str) -> Product:
    product = index.get_products([product_id])[0]
    if product is None:
        raise ProductNotFoundError(f"no product with id {product_id!r}")
    return product


@router.get("/{product_id}")
def get_product(product_id: str, index: IndexDep) -> ProductPublic:
    product = _find(index, product_id)
    return ProductPublic(
        id=product.id,
        text=product.text,
        image_url=image_url(product.id),
        attributes=dict(product.attributes),
    )


@router.get(
    "/{product_id}/image",
    response_class=FileResponse,
    responses={200: {"description": "The photo.", "content": PHOTO_TYPES}},
)
def get_product_image(product_id: str, index: IndexDep) -> FileResponse:
    product = _find(index, product_id)
    path = Path(product.image)
    if not path.is_file():
        raise ProductNotFoundError(f"the image of product {product_id!r} is missing on the server")
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": IMAGE_CACHE_CONTROL})


SIMILAR_PARAMS = {"k", "target", "filters"}  # every other query parameter is a filter


@router.get("/{product_id}/similar")
async def get_similar_products(
    product_id: str,
    request: Request,
    service: ServiceDep,
    k: Annotated[int, Query(ge=1, le=MAX_K, description="How many results, 1-100.")] = DEFAULT_K,
    target: Annotated[
        Target, Query(description='"image": similar photos; "product": photo and title.')
    ] = "image",
    filters: Annotated[
        str | None,
        Query(
            description="JSON object, as in /v1/search/text; or attribute parameters "
            "such as ?gender=Men&articleType=Shirts (repeat a name for several values)."
        ),
    ] = None,
) -> SearchResponse:
    """More like this: the k products nearest to this product's own vector, leaving out
    the product and its exact duplicates (same photo bytes, or same title and photo)."""
    attributes = [
        (name, value)
        for name, value in request.query_params.multi_items()
        if name not in SIMILAR_PARAMS
    ]
    return await service.similar(
        product_id, k=k, target=target, filters=merge_query_filters(filters, attributes)
    )
